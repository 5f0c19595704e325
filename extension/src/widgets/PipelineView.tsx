import * as React from 'react';

import { MainAreaWidget } from '@jupyterlab/apputils';
import { Button, HTMLSelect, runIcon } from '@jupyterlab/ui-components';

import { IRunOutput } from '../api';
import { stepColor } from '../format';
import { pipelineIcon } from '../icons';
import { PipelineModel } from '../model';
import { isActive } from '../runs';
import { DagView, DagZoomButtons, IDagViewHandle } from './DagView';
import { ModelView, useNow } from './ModelView';
import { RunFailure } from './RunFailure';
import { StepDetails } from './StepDetails';
import { stepStatus } from './StepsView';

/** Serve a model a run's step gave (the jobs part of the extension does it). */
export type ServeOutput = (output: IRunOutput) => Promise<void>;

/** The full-size pipeline: toolbar, graph and the selected step's details. */
function PipelineCanvas({
  model,
  openLineage,
  onServe
}: {
  model: PipelineModel;
  openLineage?: (ref: string, output: string) => void;
  onServe?: ServeOutput;
}): JSX.Element {
  const dag = React.useRef<IDagViewHandle>(null);
  const run = model.selectedRun;
  const now = useNow(run !== null && isActive(run));
  const compiled = model.compiled;
  if (!model.notebook) {
    return (
      <div className="jp-kubelab-view-empty">
        Open a notebook to see it as a pipeline.
      </div>
    );
  }
  if (!compiled || compiled.steps.length === 0) {
    return (
      <div className="jp-kubelab-view-empty" data-testid="kubelab-view-empty">
        {model.compileError
          ? `The notebook does not compile: ${model.compileError.message}`
          : model.compiling || !compiled
            ? 'Compiling…'
            : 'This notebook has no steps yet: make a cell a step in the kubelab sidebar.'}
      </div>
    );
  }
  const selected = model.step(model.selectedStep ?? '') ?? null;
  const runStep = selected ? model.runStep(selected.name) : null;
  return (
    <div className="jp-kubelab-view">
      <div
        className="jp-kubelab-view-toolbar"
        role="toolbar"
        aria-label="Pipeline"
      >
        <Button
          className="jp-mod-styled jp-mod-accept jp-kubelab-run-button"
          data-testid="kubelab-view-run"
          disabled={model.compileError !== null || model.busy}
          onClick={() => void model.runPipeline()}
        >
          <runIcon.react tag="span" className="jp-kubelab-button-icon" />
          Run as pipeline
        </Button>
        <label className="jp-kubelab-run-select">
          <span>Run</span>
          <HTMLSelect
            data-testid="kubelab-view-run-select"
            value={run?.id ?? ''}
            disabled={model.runs.length === 0}
            onChange={event => model.selectRun(event.currentTarget.value)}
            options={
              model.runs.length
                ? model.runs.map(r => ({
                    label: `${r.label || r.name} (${r.state})`,
                    value: r.id
                  }))
                : [{ label: 'no runs yet', value: '' }]
            }
          />
        </label>
        <DagZoomButtons dag={dag} />
      </div>
      {run && (
        <div
          className="jp-kubelab-view-failures"
          role="status"
          aria-live="polite"
        >
          <RunFailure
            run={run}
            stepName={task => model.stepOfTask(task)}
            onGoToCell={index => model.goToCell(index, true)}
            onShowLog={name => model.showLog(name)}
            hide={model.selectedStep}
          />
        </div>
      )}
      <div className="jp-kubelab-view-body">
        <div className="jp-kubelab-view-graph">
          <DagView
            ref={dag}
            steps={compiled.steps}
            edges={compiled.edges}
            selected={model.selectedStep}
            info={name => {
              const step = model.runStep(name);
              return {
                state: step?.state ?? 'none',
                status: stepStatus(step, now),
                color: stepColor(model.stepIndex(name))
              };
            }}
            onSelect={name => model.selectStep(name)}
          />
        </div>
        <div className="jp-kubelab-view-details">
          {selected ? (
            <StepDetails
              client={model.client}
              step={selected}
              edges={compiled.edges}
              run={run}
              runStep={runStep}
              now={now}
              busy={model.busy}
              logRequest={model.logRequest}
              onGoToCell={index => model.goToCell(index, true)}
              onSelectRun={id => model.selectRun(id)}
              onRunFrom={task => run && void model.runFrom(run.id, task)}
              onOpenLineage={openLineage}
              onServe={onServe}
            />
          ) : (
            <p className="jp-kubelab-muted jp-kubelab-details-hint">
              Select a step in the graph to see its cells, inputs and outputs,
              duration and log.
            </p>
          )}
        </div>
      </div>
    </div>
  );
}

/**
 * The pipeline view in the main area (dockable beside the notebook): the graph of
 * the active notebook's pipeline, coloured by the selected run, and the details of
 * the selected step.
 */
export class PipelineView extends MainAreaWidget<ModelView> {
  constructor(
    model: PipelineModel,
    openLineage?: (ref: string, output: string) => void,
    onServe?: ServeOutput
  ) {
    super({
      content: new ModelView(model, 'the pipeline view', m => (
        <PipelineCanvas model={m} openLineage={openLineage} onServe={onServe} />
      ))
    });
    this.id = 'kubelab-pipeline-view';
    this.addClass('jp-kubelab-pipeline-view');
    this.title.icon = pipelineIcon;
    this.title.closable = true;
    this.title.caption = 'kubelab pipeline view';
    this.toolbar.hide();
    const retitle = () => {
      const name = model.notebook?.title.label;
      this.title.label = name ? `Pipeline: ${name}` : 'Pipeline';
    };
    retitle();
    model.changed.connect(retitle);
    this.disposed.connect(() => model.changed.disconnect(retitle));
  }
}
