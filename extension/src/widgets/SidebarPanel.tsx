import * as React from 'react';

import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import {
  Button,
  checkIcon,
  ReactWidget,
  refreshIcon,
  runIcon,
  ToolbarButtonComponent,
  UseSignal
} from '@jupyterlab/ui-components';

import { IRunStep, IStatus, KubelabClient, RunState } from '../api';
import { kubelabIcon } from '../icons';
import { PipelineModel } from '../model';
import { CellStepEditor } from './CellStepEditor';
import { DagView } from './DagView';
import { NotebookView } from './NotebookView';
import { ParametersForm } from './ParametersForm';
import { RunsView } from './RunsView';
import { StatusView } from './StatusView';
import { StepLogView } from './StepLogView';
import { StepsView } from './StepsView';
import { ValidationView } from './ValidationView';

export interface ISidebarOptions {
  client: KubelabClient;
  tracker: INotebookTracker;
}

/**
 * The kubelab left-sidebar panel.
 *
 * It follows the active notebook through the notebook tracker, keeps a fresh
 * copy of the server status (identity, backends, profile), and shows the
 * notebook as a pipeline: steps, cell tags, graph, parameters, runs and logs.
 */
export class SidebarPanel extends ReactWidget {
  constructor(private readonly options: ISidebarOptions) {
    super();
    this.id = 'kubelab-sidebar';
    this.title.icon = kubelabIcon;
    this.title.caption = 'kubelab';
    this.addClass('jp-kubelab-sidebar');
    this.model = new PipelineModel(options.client);
    const follow = () =>
      this.model.setNotebook(options.tracker.currentWidget ?? null);
    options.tracker.currentChanged.connect(follow);
    follow();
  }

  readonly model: PipelineModel;

  /** Re-read the server status; called on start and on a timer. */
  async refreshStatus(): Promise<void> {
    try {
      this._status = await this.options.client.status();
      this._statusError = null;
    } catch (error) {
      this._statusError = (error as Error).message;
    }
    this.update();
  }

  dispose(): void {
    if (!this.isDisposed) {
      this.model.dispose();
    }
    super.dispose();
  }

  protected render(): JSX.Element {
    const { tracker } = this.options;
    return (
      <div className="jp-kubelab-panel">
        <header className="jp-kubelab-header">
          <kubelabIcon.react tag="span" className="jp-kubelab-header-icon" />
          <h2>kubelab</h2>
        </header>
        <section className="jp-kubelab-section">
          <StatusView status={this._status} error={this._statusError} />
        </section>
        <section className="jp-kubelab-section">
          <UseSignal
            signal={tracker.currentChanged}
            initialArgs={tracker.currentWidget}
          >
            {(_, current) => (
              <NotebookView notebook={(current as NotebookPanel) ?? null} />
            )}
          </UseSignal>
        </section>
        <UseSignal signal={this.model.changed}>
          {() => this._renderPipeline()}
        </UseSignal>
      </div>
    );
  }

  private _renderPipeline(): JSX.Element | null {
    const model = this.model;
    const panel = model.notebook;
    if (!panel) {
      return null;
    }
    const compiled = model.compiled;
    const error = model.compileError;
    const run = model.selectedRun;
    const states: Record<string, RunState> = {};
    for (const step of run?.steps ?? []) {
      states[model.stepOfTask(step.name)] = step.state;
    }
    const stepNames = compiled?.steps.map(s => s.name) ?? [];
    const log = model.logSelection;
    const logStep: IRunStep | undefined = log
      ? model.runs
          .find(r => r.id === log.runId)
          ?.steps.find(s => s.name === log.step)
      : undefined;
    return (
      <>
        <section className="jp-kubelab-section" data-testid="kubelab-pipeline">
          <div className="jp-kubelab-actions">
            <Button
              className="jp-mod-styled jp-mod-accept jp-kubelab-run-button"
              data-testid="kubelab-run-button"
              disabled={!compiled || error !== null || model.busy}
              title={
                error
                  ? 'Fix the error first'
                  : 'Save the notebook and run it as a pipeline'
              }
              onClick={() => void model.runPipeline()}
            >
              <runIcon.react tag="span" className="jp-kubelab-button-icon" />
              Run as pipeline
            </Button>
            <Button
              className="jp-mod-reject jp-kubelab-validate-button"
              data-testid="kubelab-validate-button"
              minimal
              disabled={!compiled || model.validating}
              title="Run every step once here and check that each variable passed between steps survives its marshaller"
              onClick={() => void model.validate()}
            >
              <checkIcon.react tag="span" className="jp-kubelab-button-icon" />
              {model.validating ? 'Validating…' : 'Validate'}
            </Button>
            {model.compiling && (
              <span
                className="jp-kubelab-muted"
                data-testid="kubelab-compiling"
              >
                compiling…
              </span>
            )}
          </div>
          {error && (
            <div
              className="jp-kubelab-error jp-kubelab-compile-error"
              role="alert"
              data-testid="kubelab-compile-error"
            >
              {error.message}
              {error.cell !== null && (
                <button
                  className="jp-kubelab-cell-link"
                  onClick={() => this._goToCell(error.cell as number)}
                >
                  go to cell [{error.cell}]
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
          {model.validation && (
            <ValidationView
              report={model.validation}
              onSelectCell={index => this._goToCell(index)}
            />
          )}
          {compiled && (
            <ParametersForm
              parameters={compiled.parameters}
              values={model.parameterValues}
              onChange={(name, value) => model.setParameter(name, value)}
            />
          )}
        </section>
        {compiled && (
          <section className="jp-kubelab-section">
            <h3 className="jp-kubelab-section-title">Graph</h3>
            <DagView
              steps={compiled.steps}
              edges={compiled.edges}
              states={states}
              onSelectStep={name => {
                const step = compiled.steps.find(s => s.name === name);
                if (step && step.cells.length > 0) {
                  this._goToCell(step.cells[0]);
                }
              }}
            />
          </section>
        )}
        <section className="jp-kubelab-section">
          <h3 className="jp-kubelab-section-title jp-kubelab-title-row">
            Runs
            <ToolbarButtonComponent
              icon={refreshIcon}
              tooltip="Refresh the runs of this notebook"
              dataset={{ testid: 'kubelab-refresh-runs' }}
              onClick={() => void model.refreshRuns()}
            />
          </h3>
          {model.runsWarning && (
            <div
              className="jp-kubelab-warning"
              data-testid="kubelab-runs-warning"
            >
              {model.runsWarning}
            </div>
          )}
          <RunsView
            runs={model.runs}
            selected={run}
            stepName={task => model.stepOfTask(task)}
            stepOrder={stepNames}
            busy={model.busy}
            onSelect={id => model.selectRun(id)}
            onCancel={id => void model.cancel(id)}
            onRerun={id => void model.rerun(id)}
            onRunFrom={(id, task) => void model.runFrom(id, task)}
            onShowLogs={(id, task) => model.showLogs({ runId: id, step: task })}
          />
          {log && (
            <StepLogView
              key={`${log.runId}/${log.step}`}
              client={this.options.client}
              runId={log.runId}
              step={log.step}
              label={`${model.stepOfTask(log.step)}${logStep ? ` (${logStep.state})` : ''}`}
              onClose={() => model.showLogs(null)}
            />
          )}
        </section>
        {compiled && (
          <section className="jp-kubelab-section">
            <h3 className="jp-kubelab-section-title">Steps</h3>
            <StepsView
              steps={compiled.steps}
              states={states}
              errorCell={error?.cell ?? null}
              onSelectCell={index => this._goToCell(index)}
            />
          </section>
        )}
        <section className="jp-kubelab-section">
          <h3 className="jp-kubelab-section-title">Active cell</h3>
          <UseSignal
            signal={panel.content.activeCellChanged}
            initialArgs={panel.content.activeCell}
          >
            {(_, cell) => (
              <CellStepEditor
                cell={cell ?? null}
                index={panel.content.activeCellIndex}
                steps={stepNames}
              />
            )}
          </UseSignal>
        </section>
      </>
    );
  }

  /** Make cell `index` the active one and scroll it into view. */
  private _goToCell(index: number): void {
    const panel = this.model.notebook;
    if (!panel || index < 0 || index >= panel.content.widgets.length) {
      return;
    }
    panel.content.activeCellIndex = index;
    void panel.content.scrollToCell(panel.content.widgets[index], 'center');
  }

  private _status: IStatus | null = null;
  private _statusError: string | null = null;
}
