import * as React from 'react';

import { Button, checkIcon, runIcon } from '@jupyterlab/ui-components';

import { cellLabel, stepColor } from '../format';
import { PipelineModel } from '../model';
import { isActive } from '../runs';
import { EmptyState } from './EmptyState';
import { useNow } from './ModelView';
import { ParametersForm } from './ParametersForm';
import { RunFailure } from './RunFailure';
import { StepsView } from './StepsView';
import { ValidationView } from './ValidationView';

export interface IPipelineSummaryProps {
  model: PipelineModel;
  /** Show `step` in the pipeline view (its details and log). */
  onShowStep: (step: string) => void;
  onOpenGuide: () => void;
}

/**
 * The sidebar's summary of the active notebook as a pipeline: Run as pipeline,
 * what went wrong, the parameters and the steps with their state in the selected
 * run. The graph, step details and logs are in the pipeline view.
 */
export function PipelineSummary({
  model,
  onShowStep,
  onOpenGuide
}: IPipelineSummaryProps): JSX.Element | null {
  const run = model.selectedRun;
  const now = useNow(run !== null && isActive(run));
  if (!model.notebook) {
    return (
      <p className="jp-kubelab-muted" data-testid="kubelab-empty">
        Open a notebook to turn its cells into pipeline steps.
      </p>
    );
  }
  const compiled = model.compiled;
  const error = model.compileError;
  const empty = model.empty;
  const cell = model.activeCell;
  return (
    <div className="jp-kubelab-summary" data-testid="kubelab-pipeline">
      <div className="jp-kubelab-actions">
        <Button
          className="jp-mod-styled jp-mod-accept jp-kubelab-run-button"
          data-testid="kubelab-run-button"
          disabled={!compiled || empty || error !== null || model.busy}
          title={
            error
              ? 'Fix the error first'
              : empty
                ? 'Make a cell a step first'
                : 'Save the notebook and run it as a pipeline'
          }
          onClick={() => void model.runPipeline()}
        >
          <runIcon.react tag="span" className="jp-kubelab-button-icon" />
          Run as pipeline
        </Button>
        <Button
          className="jp-kubelab-validate-button"
          data-testid="kubelab-validate-button"
          minimal
          disabled={!compiled || empty || model.validating}
          title="Run every step once here and check that each variable passed between steps survives its marshaller"
          onClick={() => void model.validate()}
        >
          <checkIcon.react tag="span" className="jp-kubelab-button-icon" />
          {model.validating ? 'Validating…' : 'Validate'}
        </Button>
        {model.compiling && (
          <span className="jp-kubelab-muted" data-testid="kubelab-compiling">
            compiling…
          </span>
        )}
      </div>
      {empty && (
        <EmptyState
          canTag={cell !== null && cell.model.type === 'code'}
          onMakeStep={() => {
            const name = model.makeActiveCellAStep();
            if (name) {
              model.selectStep(name);
            }
          }}
          onOpenGuide={onOpenGuide}
        />
      )}
      {error && (
        <div
          className="jp-kubelab-error jp-kubelab-compile-error"
          role="alert"
          data-testid="kubelab-compile-error"
        >
          {error.message}
          {error.cell !== null && (
            <button
              className="jp-kubelab-link"
              data-testid="kubelab-compile-error-cell"
              onClick={() => model.goToCell(error.cell as number, true)}
            >
              Go to {cellLabel(error.cell)}
            </button>
          )}
        </div>
      )}
      {model.actionError && (
        <div
          className="jp-kubelab-error"
          role="alert"
          data-testid="kubelab-action-error"
        >
          {model.actionError}
        </div>
      )}
      {run && (
        <div role="status" aria-live="polite">
          <RunFailure
            run={run}
            stepName={task => model.stepOfTask(task)}
            onGoToCell={index => model.goToCell(index, true)}
            onShowLog={onShowStep}
          />
        </div>
      )}
      {model.validation && (
        <ValidationView
          report={model.validation}
          onSelectCell={index => model.goToCell(index, true)}
        />
      )}
      {compiled && !empty && (
        <ParametersForm
          parameters={compiled.parameters}
          values={model.parameterValues}
          onChange={(name, value) => model.setParameter(name, value)}
        />
      )}
      {compiled && !empty && (
        <>
          <div className="jp-kubelab-steps-title">
            <span>Steps</span>
            {run && (
              <span
                className="jp-kubelab-muted"
                data-testid="kubelab-steps-run"
                title="Step states are from this run; pick another under Runs"
              >
                in {run.label || run.name}
              </span>
            )}
          </div>
          <StepsView
            steps={compiled.steps}
            run={run}
            runStep={name => model.runStep(name)}
            selected={model.selectedStep}
            errorCell={model.compileError?.cell ?? null}
            busy={model.busy}
            now={now}
            colorOf={name => stepColor(model.stepIndex(name))}
            onSelect={name => {
              model.selectStep(name);
              const first = model.step(name)?.cells[0];
              if (first !== undefined) {
                model.goToCell(first);
              }
            }}
            onShowLog={onShowStep}
            onRunFrom={name => {
              const task = model.runStep(name)?.name;
              if (run && task) {
                void model.runFrom(run.id, task);
              }
            }}
          />
        </>
      )}
    </div>
  );
}
