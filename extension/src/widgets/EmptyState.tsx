import * as React from 'react';

import { Button } from '@jupyterlab/ui-components';

export interface IEmptyStateProps {
  /** Whether the active cell is a code cell that can become a step. */
  canTag: boolean;
  onMakeStep: () => void;
  onOpenGuide: () => void;
}

/** What a notebook without steps shows: how to start, not an error. */
export function EmptyState({
  canTag,
  onMakeStep,
  onOpenGuide
}: IEmptyStateProps): JSX.Element {
  return (
    <div className="jp-kubelab-empty-state" data-testid="kubelab-empty-state">
      <p className="jp-kubelab-empty-title">This notebook has no steps yet</p>
      <ol className="jp-kubelab-howto">
        <li>Select a code cell and make it a step.</li>
        <li>The cells below join it, up to the next step.</li>
        <li>Run as pipeline: steps run in parallel where they can.</li>
      </ol>
      <div className="jp-kubelab-empty-actions">
        <Button
          className="jp-mod-styled jp-mod-accept"
          data-testid="kubelab-make-step"
          disabled={!canTag}
          title={
            canTag
              ? 'Tag the active cell as the start of a step'
              : 'Select a code cell first'
          }
          onClick={onMakeStep}
        >
          Make this cell a step
        </Button>
        <button
          className="jp-kubelab-link"
          data-testid="kubelab-open-guide"
          onClick={onOpenGuide}
        >
          Guide
        </button>
      </div>
    </div>
  );
}
