import * as React from 'react';

import { Button, fastForwardIcon } from '@jupyterlab/ui-components';

import {
  ICompiledStep,
  IEdge,
  IRun,
  IRunOutput,
  IRunStep,
  KubelabClient
} from '../api';
import { cellLabel, failureLine, formatDuration, shortTime } from '../format';
import { isActive } from '../runs';
import { EdgeVariables } from './EdgeVariables';
import { StateBadge } from './StateDot';
import { StepLogView } from './StepLogView';
import { StepOutputs } from './StepOutputs';
import { stepStatus } from './StepsView';

export interface IStepDetailsProps {
  client: KubelabClient;
  step: ICompiledStep;
  edges: IEdge[];
  run: IRun | null;
  runStep: IRunStep | null;
  now: number;
  busy: boolean;
  /** Changes each time the user asks for this step's log: scroll to it. */
  logRequest: number;
  onGoToCell: (index: number) => void;
  onSelectRun: (id: string) => void;
  onRunFrom: (task: string) => void;
  /** Serve a model the step gave (absent: no Serve buttons). */
  onServe?: (output: IRunOutput) => Promise<void>;
  /** Open the lineage of one of the step's outputs in the run (`RUN/TASK/OUTPUT`). */
  onOpenLineage?: (ref: string, output: string) => void;
}

/** The artifacts a run step wrote (models, datasets, notebook values), by name. */
function outputArtifacts(runStep: IRunStep | null): string[] {
  return Object.entries(runStep?.outputs ?? {})
    .filter(([, v]) => typeof v === 'object' && v !== null && 'uri' in v)
    .map(([name]) => name);
}

/** One term of a description list, left out when there is nothing to say. */
function Fact(props: {
  term: string;
  shown: boolean;
  children: React.ReactNode;
}): JSX.Element | null {
  return props.shown ? (
    <>
      <dt>{props.term}</dt>
      <dd>{props.children}</dd>
    </>
  ) : null;
}

/**
 * One step of the pipeline in full: its cells, what it needs and gives, resources,
 * its state in the selected run (duration, cache origin, failure) and its log.
 */
export function StepDetails(props: IStepDetailsProps): JSX.Element {
  const { step, edges, run, runStep, now } = props;
  const inputs = edges.filter(e => e.to === step.name && e.variables.length);
  const outputs = edges.filter(e => e.from === step.name && e.variables.length);
  const after = step.depends_on.filter(
    name => !inputs.some(e => e.from === name)
  );
  const state = runStep?.state ?? 'none';
  const cachedFrom = runStep?.cached ? runStep.cached_from : null;
  const resources = Object.entries(step.limits).map(([k, v]) => `${k} ${v}`);
  if (step.image) {
    resources.push(`image ${step.image}`);
  }
  // "Run from here" reuses the local cache: local runs only.
  const canRunFrom =
    run !== null &&
    !isActive(run) &&
    run.path !== null &&
    run.backend === 'local' &&
    runStep;
  const artifacts = outputArtifacts(runStep);
  const logRun = cachedFrom?.run ?? run?.id;
  const logTask = cachedFrom?.task ?? runStep?.name;
  const log = React.useRef<HTMLDivElement>(null);
  React.useEffect(() => {
    if (props.logRequest > 0) {
      log.current?.scrollIntoView({ block: 'start' });
      log.current
        ?.querySelector<HTMLElement>('[data-testid=kubelab-log-text]')
        ?.focus();
    }
  }, [props.logRequest]);
  return (
    <div className="jp-kubelab-step-details" data-testid="kubelab-step-details">
      <div className="jp-kubelab-details-title">
        <h3>{step.name}</h3>
        <StateBadge state={state} testid="kubelab-details-state" />
      </div>
      {runStep?.state === 'failed' && (
        <div
          className="jp-kubelab-error jp-kubelab-failure"
          data-testid="kubelab-details-failure"
        >
          <span className="jp-kubelab-failure-text">
            {failureLine(step.name, runStep)}
          </span>
          {runStep.failed_at && (
            <span className="jp-kubelab-failure-actions">
              <button
                className="jp-kubelab-link"
                onClick={() => props.onGoToCell(runStep.failed_at!.cell)}
              >
                Go to cell
              </button>
            </span>
          )}
        </div>
      )}
      <dl className="jp-kubelab-facts">
        <dt>Cells</dt>
        <dd>
          {step.cells.map((index, i) => (
            <React.Fragment key={index}>
              {i > 0 && ', '}
              <button
                className="jp-kubelab-link"
                title="Go to the cell in the notebook"
                onClick={() => props.onGoToCell(index)}
              >
                {cellLabel(index)}
              </button>
            </React.Fragment>
          ))}
        </dd>
        <Fact term="Needs" shown={inputs.length > 0}>
          <EdgeVariables edges={inputs} side="from" />
        </Fact>
        <Fact term="After" shown={after.length > 0}>
          {after.join(', ')}
        </Fact>
        <Fact term="Gives" shown={outputs.length > 0}>
          <EdgeVariables edges={outputs} side="to" />
        </Fact>
        <Fact term="Parameters" shown={step.parameters.length > 0}>
          {step.parameters.join(', ')}
        </Fact>
        <Fact term="Resources" shown={resources.length > 0}>
          {resources.join(' · ')}
        </Fact>
        {run && (
          <>
            <dt>In run</dt>
            <dd>
              {run.label || run.name}
              <span
                className="jp-kubelab-muted"
                data-testid="kubelab-details-status"
              >
                {' '}
                · {stepStatus(runStep, now)}
                {runStep?.started_at && !runStep.cached
                  ? ` · started ${shortTime(runStep.started_at)}`
                  : ''}
                {runStep && runStep.attempts > 1
                  ? ` · ${runStep.attempts} attempts`
                  : ''}
              </span>
            </dd>
          </>
        )}
        {run && runStep && props.onOpenLineage && artifacts.length > 0 && (
          <>
            <dt>Outputs</dt>
            <dd data-testid="kubelab-details-outputs">
              {artifacts.map((name, i) => (
                <React.Fragment key={name}>
                  {i > 0 && ', '}
                  <button
                    className="jp-kubelab-link"
                    title={`Lineage of ${name}: the step and run that made it, back to the notebook and parameters`}
                    data-testid={`kubelab-lineage-${name}`}
                    onClick={() =>
                      props.onOpenLineage?.(
                        `${run.id}/${runStep.name}/${name}`,
                        name
                      )
                    }
                  >
                    {name}
                  </button>
                </React.Fragment>
              ))}
            </dd>
          </>
        )}
        {cachedFrom && (
          <>
            <dt>Result</dt>
            <dd data-testid="kubelab-details-cached">
              reused from{' '}
              <button
                className="jp-kubelab-link"
                title="Show that run"
                onClick={() => props.onSelectRun(cachedFrom.run)}
              >
                {cachedFrom.number ? `#${cachedFrom.number}` : cachedFrom.run}
              </button>{' '}
              <span className="jp-kubelab-muted">
                (same code and inputs
                {cachedFrom.duration_s !== null
                  ? `; it took ${formatDuration(cachedFrom.duration_s)} there`
                  : ''}
                )
              </span>
            </dd>
          </>
        )}
        {run && runStep?.state === 'succeeded' && props.onServe && (
          <StepOutputs
            client={props.client}
            runId={cachedFrom?.run ?? run.id}
            task={cachedFrom?.task ?? runStep.name}
            onServe={props.onServe}
          />
        )}
      </dl>
      {run && runStep && (
        <div className="jp-kubelab-details-actions">
          <Button
            className="jp-mod-styled"
            data-testid="kubelab-details-run-from"
            disabled={!canRunFrom || props.busy}
            title="Re-run this step and what follows; reuse the results before it"
            onClick={() => props.onRunFrom(runStep.name)}
          >
            <fastForwardIcon.react
              tag="span"
              className="jp-kubelab-button-icon"
            />
            Run from here
          </Button>
        </div>
      )}
      <div>
        {logRun && logTask && (
          <StepLogView
            key={`${logRun}/${logTask}`}
            source={`${logRun}/${logTask}`}
            read={offset => props.client.stepLogs(logRun, logTask, offset)}
            reveal={props.logRequest}
            label={
              cachedFrom
                ? `${step.name} in #${cachedFrom.number ?? '?'} (where the cached result was made)`
                : `${step.name} in ${run?.label || run?.name}`
            }
          />
        )}
      </div>
    </div>
  );
}
