import * as React from 'react';

import { ICompiledStep, RunState } from '../api';

export interface IStepsViewProps {
  steps: ICompiledStep[];
  /** Notebook step name -> state in the selected run. */
  states: Record<string, RunState>;
  /** The cell a compile error points at, if any. */
  errorCell: number | null;
  onSelectCell: (index: number) => void;
}

/** The active notebook's steps, each with its cells; a cell index jumps to the cell. */
export function StepsView({
  steps,
  states,
  errorCell,
  onSelectCell
}: IStepsViewProps): JSX.Element {
  if (steps.length === 0) {
    return (
      <p className="jp-kubelab-muted" data-testid="kubelab-no-steps">
        No steps yet: tag a code cell with a step name below.
      </p>
    );
  }
  return (
    <ol className="jp-kubelab-steps" data-testid="kubelab-steps">
      {steps.map(step => {
        const state = states[step.name];
        return (
          <li
            key={step.name}
            className="jp-kubelab-step"
            data-testid={`kubelab-step-${step.name}`}
          >
            <span
              className={`jp-kubelab-state-dot jp-kubelab-state-${state ?? 'none'}`}
              title={state ?? 'not run'}
            />
            <span className="jp-kubelab-step-name">{step.name}</span>
            <span className="jp-kubelab-step-cells">
              {step.cells.map(index => (
                <button
                  key={index}
                  className={
                    'jp-kubelab-cell-link' +
                    (index === errorCell ? ' jp-kubelab-cell-link-error' : '')
                  }
                  title={`Go to cell ${index}`}
                  onClick={() => onSelectCell(index)}
                >
                  [{index}]
                </button>
              ))}
            </span>
            {(step.depends_on.length > 0 ||
              Object.keys(step.limits).length > 0) && (
              <div className="jp-kubelab-step-details jp-kubelab-muted">
                {step.depends_on.length > 0 && (
                  <span>after {step.depends_on.join(', ')}</span>
                )}
                {Object.entries(step.limits).map(([key, value]) => (
                  <span key={key} className="jp-kubelab-chip">
                    {key}: {value}
                  </span>
                ))}
                {step.image && (
                  <span className="jp-kubelab-chip">{step.image}</span>
                )}
              </div>
            )}
          </li>
        );
      })}
    </ol>
  );
}
