import * as React from 'react';

import {
  fastForwardIcon,
  textEditorIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';

import { ICompiledStep, IRun, IRunStep } from '../api';
import { cellsLabel, formatDuration, secondsSince, stateText } from '../format';
import { isActive } from '../runs';
import { StateDot } from './StateDot';

export interface IStepsViewProps {
  steps: ICompiledStep[];
  /** The run whose states are shown (the selected one), if any. */
  run: IRun | null;
  /** The run step of a notebook step in `run`. */
  runStep: (step: string) => IRunStep | null;
  selected: string | null;
  /** The cell a compile error points at, if any. */
  errorCell: number | null;
  busy: boolean;
  /** Current time (ms), so running steps show their elapsed time. */
  now: number;
  colorOf: (step: string) => number;
  onSelect: (step: string) => void;
  onShowLog: (step: string) => void;
  onRunFrom: (step: string) => void;
}

/** "succeeded · 1.2 s", "cached from #5 · 256 ms", "running · 3.0 s", "not run". */
export function stepStatus(
  runStep: IRunStep | null,
  now: number = Date.now()
): string {
  if (!runStep) {
    return stateText(undefined);
  }
  if (runStep.cached) {
    // Where the result came from, and the time it took there (what the cache saved).
    const from = runStep.cached_from?.number;
    const took = formatDuration(runStep.cached_from?.duration_s);
    return `cached${from ? ` from #${from}` : ''}${took ? `, ${took}` : ''}`;
  }
  const seconds =
    runStep.state === 'running'
      ? secondsSince(runStep.started_at, null, now)
      : runStep.duration_s;
  const time = formatDuration(seconds);
  const attempts =
    runStep.attempts > 1 ? ` (${runStep.attempts} attempts)` : '';
  return `${runStep.state}${time ? ` · ${time}` : ''}${attempts}`;
}

/** A step name that wraps after `_` and `-` rather than anywhere. */
export function Breakable({ name }: { name: string }): JSX.Element {
  const parts = name.split(/(?<=[_-])/);
  return (
    <>
      {parts.map((part, i) => (
        <React.Fragment key={i}>
          {part}
          {i < parts.length - 1 && <wbr />}
        </React.Fragment>
      ))}
    </>
  );
}

/**
 * The notebook's steps, each with its state in the selected run on a line of its
 * own (so long names are never cut): select one to see it on its cells and in the
 * pipeline view.
 */
export function StepsView(props: IStepsViewProps): JSX.Element {
  const { steps, run, selected, errorCell, busy, now } = props;
  // "Run from here" reuses the local cache: local runs only.
  const canRunFrom =
    run !== null &&
    !isActive(run) &&
    run.path !== null &&
    run.backend === 'local';
  return (
    <ol
      className="jp-kubelab-steps"
      data-testid="kubelab-steps"
      aria-label="Steps"
    >
      {steps.map(step => {
        const runStep = props.runStep(step.name);
        const state = runStep?.state ?? 'none';
        const select = () => props.onSelect(step.name);
        return (
          <li
            key={step.name}
            className={
              'jp-kubelab-step' +
              (runStep ? ' jp-kubelab-has-actions' : '') +
              (step.name === selected ? ' jp-mod-selected' : '') +
              (step.cells.includes(errorCell ?? -1)
                ? ' jp-kubelab-step-error'
                : '')
            }
            data-testid={`kubelab-step-${step.name}`}
          >
            <div
              className="jp-kubelab-step-main"
              role="button"
              tabIndex={0}
              aria-pressed={step.name === selected}
              aria-label={`${step.name}: ${stepStatus(runStep, now)}, ${cellsLabel(step.cells)}`}
              onClick={select}
              onKeyDown={event => {
                if (event.key === 'Enter' || event.key === ' ') {
                  event.preventDefault();
                  select();
                }
              }}
            >
              <span
                className={`jp-kubelab-step-swatch jp-kubelab-color-${props.colorOf(step.name)}`}
                aria-hidden="true"
              />
              <span className="jp-kubelab-step-name">
                <Breakable name={step.name} />
              </span>
              <span className="jp-kubelab-step-status">
                <StateDot
                  state={state}
                  testid={`kubelab-step-state-${step.name}`}
                />
                <span data-testid={`kubelab-step-status-${step.name}`}>
                  {stepStatus(runStep, now)}
                </span>
                <span className="jp-kubelab-muted">
                  {' · '}
                  {cellsLabel(step.cells)}
                </span>
              </span>
            </div>
            {runStep && (
              <span className="jp-kubelab-row-actions">
                <ToolbarButtonComponent
                  icon={textEditorIcon}
                  tooltip={`Show the log of ${step.name}`}
                  dataset={{ testid: `kubelab-logs-${step.name}` }}
                  onClick={() => props.onShowLog(step.name)}
                />
                <ToolbarButtonComponent
                  icon={fastForwardIcon}
                  tooltip={`Run from ${step.name}: re-run it and what follows, reuse the results before it`}
                  dataset={{ testid: `kubelab-run-from-${step.name}` }}
                  enabled={canRunFrom && !busy}
                  onClick={() => props.onRunFrom(step.name)}
                />
              </span>
            )}
          </li>
        );
      })}
    </ol>
  );
}
