import * as React from 'react';

import {
  Button,
  redoIcon,
  stopIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';

import { IRun } from '../api';
import {
  formatDuration,
  formatValue,
  secondsSince,
  shortTime,
  stateText
} from '../format';
import { isActive } from '../runs';
import { StateBadge, StateDot } from './StateDot';

export interface IRunsViewProps {
  runs: IRun[];
  selected: IRun | null;
  busy: boolean;
  /** Current time (ms), so active runs show their elapsed time. */
  now: number;
  onSelect: (id: string) => void;
  onCancel: (id: string) => void;
  onRerun: (id: string) => void;
  /** Compare the runs ticked in the list (two or more); no ticks without it. */
  onCompare?: (ids: string[]) => void;
}

const SHOWN = 10;

function runTime(run: IRun, now: number): string {
  return formatDuration(secondsSince(run.created_at, run.finished_at, now));
}

/**
 * The notebook's latest runs, newest first, each named so it can be told apart
 * (`#8 · re-run of #7`); the selected one with its actions and metrics. Rows are a
 * listbox: Tab to it, arrows to move, Enter or Space to select.
 */
/** Where a run ran, for runs that are not on this machine. */
function BackendChip({ backend }: { backend: string }): JSX.Element {
  const kfp = backend === 'kubernetes';
  return (
    <span
      className="jp-kubelab-chip"
      title={kfp ? 'on Kubeflow Pipelines' : `on ${backend}`}
      data-testid="kubelab-run-backend"
    >
      {kfp ? 'KFP' : backend}
    </span>
  );
}

export function RunsView(props: IRunsViewProps): JSX.Element {
  const { runs, selected, busy, now, onCompare } = props;
  const list = React.useRef<HTMLUListElement>(null);
  const [ticked, setTicked] = React.useState<string[]>([]);
  if (runs.length === 0) {
    return (
      <p className="jp-kubelab-muted" data-testid="kubelab-no-runs">
        No runs of this notebook yet.
      </p>
    );
  }
  const shown = runs.slice(0, SHOWN);
  // Ticks of runs no longer listed (another notebook's) do not count.
  const compared = ticked.filter(id => shown.some(r => r.id === id));
  const tick = (id: string, on: boolean) =>
    setTicked(on ? [...compared, id] : compared.filter(t => t !== id));
  const move = (from: number, by: number) => {
    const rows = list.current?.querySelectorAll<HTMLElement>('[role=option]');
    rows?.[Math.max(0, Math.min(shown.length - 1, from + by))]?.focus();
  };
  const active = selected !== null && isActive(selected);
  return (
    <div className="jp-kubelab-runs" data-testid="kubelab-runs">
      <ul
        ref={list}
        className="jp-kubelab-run-list"
        role="listbox"
        aria-label="Runs of this notebook"
      >
        {shown.map((run, i) => {
          const isSelected = run.id === selected?.id;
          return (
            <li
              key={run.id}
              className={
                'jp-kubelab-run' +
                (isSelected ? ' jp-mod-selected' : '') +
                (onCompare ? ' jp-kubelab-run-comparable' : '')
              }
              role="option"
              aria-selected={isSelected}
              tabIndex={isSelected || (!selected && i === 0) ? 0 : -1}
              title={run.id}
              data-testid="kubelab-run"
              data-run-id={run.id}
              onClick={() => props.onSelect(run.id)}
              onKeyDown={event => {
                if (event.key === 'Enter' || event.key === ' ') {
                  event.preventDefault();
                  props.onSelect(run.id);
                } else if (event.key === 'ArrowDown') {
                  event.preventDefault();
                  move(i, 1);
                } else if (event.key === 'ArrowUp') {
                  event.preventDefault();
                  move(i, -1);
                }
              }}
            >
              {onCompare && (
                <CompareTick
                  label={run.label || run.name}
                  checked={compared.includes(run.id)}
                  onChange={on => tick(run.id, on)}
                />
              )}
              <span
                className="jp-kubelab-run-label"
                data-testid="kubelab-run-label"
              >
                {run.label || run.name}
              </span>
              {run.backend !== 'local' && <BackendChip backend={run.backend} />}
              <span className="jp-kubelab-run-meta">
                <StateDot state={run.state} />
                {stateText(run.state)} · {shortTime(run.created_at)} ·{' '}
                {runTime(run, now)}
              </span>
            </li>
          );
        })}
      </ul>
      {/* Once a run is ticked: the list keeps its room until then. */}
      {onCompare && compared.length > 0 && (
        <CompareBar
          count={compared.length}
          // Oldest first, as KFP's Compare runs: what changed since the first one.
          onCompare={() =>
            onCompare(
              shown
                .filter(r => compared.includes(r.id))
                .map(r => r.id)
                .reverse()
            )
          }
        />
      )}
      {runs.length > SHOWN && (
        <p className="jp-kubelab-muted">
          {runs.length - SHOWN} older runs: <code>kubelab runs list</code>
        </p>
      )}
      {selected && (
        <div className="jp-kubelab-run-detail" data-testid="kubelab-run-detail">
          <div className="jp-kubelab-run-header">
            <span className="jp-kubelab-run-title">
              {selected.label || selected.name}{' '}
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
                icon={redoIcon}
                tooltip="Re-run: the same notebook and parameters (unchanged steps come from the cache)"
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
          {Object.keys(selected.parameters).length > 0 && (
            <div className="jp-kubelab-muted jp-kubelab-run-params">
              {Object.entries(selected.parameters)
                .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
                .join(' · ')}
            </div>
          )}
          {Object.keys(selected.metrics).length > 0 && (
            <table className="jp-kubelab-metrics" data-testid="kubelab-metrics">
              <caption className="jp-kubelab-sr-only">Metrics</caption>
              <tbody>
                {Object.entries(selected.metrics).map(([name, value]) => (
                  <tr key={name}>
                    <th scope="row">{name}</th>
                    <td data-testid={`kubelab-metric-${name}`}>
                      {formatValue(value)}
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

/** A run's tick for "Compare runs" (a checkbox that does not select the row). */
function CompareTick(props: {
  label: string;
  checked: boolean;
  onChange: (checked: boolean) => void;
}): JSX.Element {
  return (
    <label
      className="jp-kubelab-run-tick"
      title="Tick two or more runs, then Compare"
      onClick={event => event.stopPropagation()}
      onKeyDown={event => event.stopPropagation()}
    >
      <input
        type="checkbox"
        aria-label={`Compare ${props.label}`}
        data-testid="kubelab-run-tick"
        checked={props.checked}
        onChange={event => props.onChange(event.currentTarget.checked)}
      />
    </label>
  );
}

/** "Compare 2 runs" under the list, once two or more are ticked. */
function CompareBar(props: {
  count: number;
  onCompare: () => void;
}): JSX.Element {
  return (
    <div className="jp-kubelab-compare-bar">
      <Button
        className="jp-mod-styled"
        data-testid="kubelab-compare-runs"
        disabled={props.count < 2}
        title="Parameters, metrics, code, data and cache of the ticked runs, side by side"
        onClick={props.onCompare}
      >
        Compare{props.count > 1 ? ` ${props.count} runs` : ''}
      </Button>
      {props.count < 2 && (
        <span className="jp-kubelab-muted">tick two or more runs</span>
      )}
    </div>
  );
}
