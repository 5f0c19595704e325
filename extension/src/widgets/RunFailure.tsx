import * as React from 'react';

import { IRun, IRunStep } from '../api';
import { failureLine, plainError } from '../format';

export interface IRunFailureProps {
  run: IRun;
  /** Notebook step name of a run step. */
  stepName: (task: string) => string;
  onGoToCell: (index: number) => void;
  onShowLog: (step: string) => void;
  /** A step whose failure is shown elsewhere already (the selected one). */
  hide?: string | null;
}

/**
 * Why the run failed, one line per failed step (`summarize failed in cell 13,
 * line 3: ZeroDivisionError: division by zero`), with the way to the cell and log.
 */
export function RunFailure({
  run,
  stepName,
  onGoToCell,
  onShowLog,
  hide
}: IRunFailureProps): JSX.Element | null {
  if (run.state !== 'failed') {
    return null;
  }
  const failed: IRunStep[] = run.steps.filter(s => s.state === 'failed');
  if (failed.length === 0) {
    return (
      <div
        className="jp-kubelab-error jp-kubelab-failure"
        data-testid="kubelab-run-error"
      >
        {run.label} failed: {plainError(run.error) || 'no reason recorded'}
      </div>
    );
  }
  return (
    <>
      {failed.map(step => {
        const name = stepName(step.name);
        if (name === hide) {
          return null;
        }
        const cell = step.failed_at?.cell ?? step.cells[0];
        return (
          <div
            key={step.name}
            className="jp-kubelab-error jp-kubelab-failure"
            data-testid={`kubelab-failure-${name}`}
          >
            <span className="jp-kubelab-failure-text">
              {failureLine(name, step)}
            </span>
            <span className="jp-kubelab-failure-actions">
              {cell !== undefined && (
                <button
                  className="jp-kubelab-link"
                  data-testid={`kubelab-failure-cell-${name}`}
                  onClick={() => onGoToCell(cell)}
                >
                  Go to cell
                </button>
              )}
              <button
                className="jp-kubelab-link"
                data-testid={`kubelab-failure-log-${name}`}
                onClick={() => onShowLog(name)}
              >
                Show log
              </button>
            </span>
          </div>
        );
      })}
    </>
  );
}
