import * as React from 'react';

import { stateText } from '../format';

interface IStateProps {
  state: string;
  testid?: string;
}

/**
 * How a state looks: a coloured dot next to text that says it (the dot alone is
 * hidden from screen readers), or a badge that is the text.
 */
export function StateDot({ state, testid }: IStateProps): JSX.Element {
  return (
    <span
      className={`jp-kubelab-state-dot jp-kubelab-state-${state}`}
      data-testid={testid}
      data-state={state}
      aria-hidden="true"
    />
  );
}

export function StateBadge({ state, testid }: IStateProps): JSX.Element {
  return (
    <span
      className={`jp-kubelab-badge jp-kubelab-state-${state}`}
      data-testid={testid}
      data-state={state}
    >
      {stateText(state)}
    </span>
  );
}
