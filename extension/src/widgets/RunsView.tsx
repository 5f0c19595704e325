import * as React from 'react';

import {
  fastForwardIcon,
  refreshIcon,
  stopIcon,
  textEditorIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';

import { FINAL_STATES, IRun, IRunStep } from '../api';

export interface IRunsViewProps {
  runs: IRun[];
  selected: IRun | null;
  /** Notebook step name of a run step (task) name. */
  stepName: (task: string) => string;
  /** Order of the notebook's steps, to list run steps the same way. */
  stepOrder: string[];
  busy: boolean;
  onSelect: (id: string) => void;
  onCancel: (id: string) => void;
  onRerun: (id: string) => void;
  onRunFrom: (id: string, task: string) => void;
  onShowLogs: (id: string, task: string) => void;
}

function shortTime(iso: string | null): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return date.toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || seconds === undefined) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}

function runDuration(run: IRun): number | null {
  const start = Date.parse(run.created_at);
  const end = run.finished_at ? Date.parse(run.finished_at) : Date.now();
  return Number.isFinite(start) && Number.isFinite(end)
    ? (end - start) / 1000
    : null;
}

function formatMetric(value: unknown): string {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : value.toPrecision(4);
  }
  return JSON.stringify(value);
}

export function StateBadge({
  state,
  testid
}: {
  state: string;
  testid?: string;
}): JSX.Element {
  return (
    <span
      className={`jp-kubelab-badge jp-kubelab-state-${state}`}
      data-testid={testid}
      data-state={state}
    >
      {state}
    </span>
  );
}

/** Where a run ran, for runs that are not on this machine. */
function BackendChip({ backend }: { backend: string }): JSX.Element {
  const label = backend === 'kubernetes' ? 'KFP' : backend;
  return (
    <span
      className="jp-kubelab-chip"
      title={
        backend === 'kubernetes' ? 'on Kubeflow Pipelines' : `on ${backend}`
      }
      data-testid="kubelab-run-backend"
    >
      {label}
    </span>
  );
}

function StepRow(props: {
  run: IRun;
  step: IRunStep;
  name: string;
  onRunFrom: (id: string, task: string) => void;
  onShowLogs: (id: string, task: string) => void;
  busy: boolean;
}): JSX.Element {
  const { run, step, name, onRunFrom, onShowLogs, busy } = props;
  // "Run from here" reuses the local cache: local runs only.
  const canRunFrom =
    FINAL_STATES.includes(run.state) &&
    run.path !== null &&
    run.backend === 'local';
  return (
    <li
      className="jp-kubelab-run-step"
      data-testid={`kubelab-run-step-${name}`}
    >
      <span
        className={`jp-kubelab-state-dot jp-kubelab-state-${step.state}`}
        title={step.state}
        data-testid={`kubelab-step-state-${name}`}
        data-state={step.state}
      />
      <span
        className="jp-kubelab-step-name"
        title={
          `${name}: ${step.state}` +
          (step.attempts > 1 ? ` after ${step.attempts} attempts` : '')
        }
      >
        {name}
      </span>
      {step.cached && (
        <span
          className="jp-kubelab-chip jp-kubelab-cached"
          title="outputs reused from the cache"
          data-testid={`kubelab-step-cached-${name}`}
        >
          cached
        </span>
      )}
      <span className="jp-kubelab-muted jp-kubelab-duration">
        {formatDuration(step.duration_s)}
      </span>
      <span className="jp-kubelab-row-actions">
        <ToolbarButtonComponent
          icon={textEditorIcon}
          tooltip={`Logs of ${name}`}
          dataset={{ testid: `kubelab-logs-${name}` }}
          onClick={() => onShowLogs(run.id, step.name)}
        />
        <ToolbarButtonComponent
          icon={fastForwardIcon}
          tooltip={`Run from ${name}: re-run it and its downstream, reuse cached upstream`}
          dataset={{ testid: `kubelab-run-from-${name}` }}
          enabled={canRunFrom && !busy}
          onClick={() => onRunFrom(run.id, step.name)}
        />
      </span>
      {step.error && step.state !== 'skipped' && (
        <div className="jp-kubelab-error jp-kubelab-step-error">
          {step.error}
        </div>
      )}
    </li>
  );
}

/** The notebook's runs, newest first; the selected one with steps, metrics and actions. */
export function RunsView(props: IRunsViewProps): JSX.Element {
  const { runs, selected, stepName, stepOrder, busy } = props;
  if (runs.length === 0) {
    return (
      <p className="jp-kubelab-muted" data-testid="kubelab-no-runs">
        No runs of this notebook yet.
      </p>
    );
  }
  const order = (step: IRunStep) => {
    const index = stepOrder.indexOf(stepName(step.name));
    return index < 0 ? stepOrder.length : index;
  };
  const steps = selected
    ? [...selected.steps].sort((a, b) => order(a) - order(b))
    : [];
  const active = selected !== null && !FINAL_STATES.includes(selected.state);
  return (
    <div className="jp-kubelab-runs" data-testid="kubelab-runs">
      <ul className="jp-kubelab-run-list">
        {runs.slice(0, 8).map(run => (
          <li
            key={run.id}
            className={
              'jp-kubelab-run' +
              (run.id === selected?.id ? ' jp-mod-selected' : '')
            }
            data-testid="kubelab-run"
            data-run-id={run.id}
            onClick={() => props.onSelect(run.id)}
          >
            <StateBadge state={run.state} />
            <span className="jp-kubelab-run-id" title={run.id}>
              {shortTime(run.created_at)}
            </span>
            {run.backend !== 'local' && <BackendChip backend={run.backend} />}
            <span className="jp-kubelab-muted jp-kubelab-duration">
              {formatDuration(runDuration(run))}
            </span>
          </li>
        ))}
      </ul>
      {selected && (
        <div className="jp-kubelab-run-detail" data-testid="kubelab-run-detail">
          <div className="jp-kubelab-run-header">
            <span title={selected.id}>
              Run <code>{selected.id}</code>{' '}
              <StateBadge state={selected.state} testid="kubelab-run-state" />
            </span>
            <span className="jp-kubelab-row-actions">
              <ToolbarButtonComponent
                icon={stopIcon}
                tooltip="Cancel this run"
                dataset={{ testid: 'kubelab-cancel-run' }}
                enabled={active && !busy}
                onClick={() => props.onCancel(selected.id)}
              />
              <ToolbarButtonComponent
                icon={refreshIcon}
                tooltip="Re-run: the same notebook and parameters"
                dataset={{ testid: 'kubelab-rerun' }}
                enabled={!active && !busy && selected.path !== null}
                onClick={() => props.onRerun(selected.id)}
              />
            </span>
          </div>
          {selected.url && (
            <a
              className="jp-kubelab-link"
              href={selected.url}
              target="_blank"
              rel="noopener noreferrer"
              data-testid="kubelab-run-link"
            >
              Open in Kubeflow Pipelines
            </a>
          )}
          {selected.error && (
            <div className="jp-kubelab-error" data-testid="kubelab-run-error">
              {selected.error}
            </div>
          )}
          {Object.keys(selected.parameters).length > 0 && (
            <div className="jp-kubelab-muted jp-kubelab-run-params">
              {Object.entries(selected.parameters)
                .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
                .join(' · ')}
            </div>
          )}
          <ul className="jp-kubelab-run-steps">
            {steps.map(step => (
              <StepRow
                key={step.name}
                run={selected}
                step={step}
                name={stepName(step.name)}
                busy={busy}
                onRunFrom={props.onRunFrom}
                onShowLogs={props.onShowLogs}
              />
            ))}
          </ul>
          {Object.keys(selected.metrics).length > 0 && (
            <table className="jp-kubelab-metrics" data-testid="kubelab-metrics">
              <tbody>
                {Object.entries(selected.metrics).map(([name, value]) => (
                  <tr key={name}>
                    <th>{name}</th>
                    <td data-testid={`kubelab-metric-${name}`}>
                      {formatMetric(value)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </div>
  );
}
