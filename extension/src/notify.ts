/**
 * A JupyterLab notification when a run finishes out of sight: the kubelab views
 * are closed, or another notebook is the active one.
 */
import { Notification } from '@jupyterlab/apputils';

import { IRun } from './api';
import {
  failureLine,
  formatDuration,
  plainError,
  secondsSince
} from './format';
import { RunTracker } from './runs';

export interface IRunNotifierOptions {
  tracker: RunTracker;
  /** Whether the user is looking at this run's notebook in a kubelab view. */
  inSight: (run: IRun) => boolean;
  /** Show the run: open its notebook and the kubelab views, select it. */
  show: (run: IRun) => void;
}

/** "demo.ipynb: #7 · n_estimators=50 succeeded in 12.3 s". */
export function finishedMessage(run: IRun): string {
  const name = `${run.path ?? run.name}: ${run.label || run.id}`;
  const took = formatDuration(secondsSince(run.created_at, run.finished_at));
  if (run.state === 'failed') {
    const step = run.steps.find(s => s.state === 'failed');
    const why = step
      ? failureLine(step.display_name || step.name, step)
      : plainError(run.error);
    return `${name} failed${why ? `: ${why}` : ''}`;
  }
  return `${name} ${run.state}${took ? ` in ${took}` : ''}`;
}

export class RunNotifier {
  constructor(private readonly _options: IRunNotifierOptions) {
    _options.tracker.finished.connect(this._onFinished, this);
  }

  dispose(): void {
    this._options.tracker.finished.disconnect(this._onFinished, this);
  }

  private _onFinished(_: RunTracker, run: IRun): void {
    if (this._options.inSight(run)) {
      return;
    }
    const type =
      run.state === 'succeeded'
        ? 'success'
        : run.state === 'failed'
          ? 'error'
          : 'warning';
    Notification.emit(finishedMessage(run), type, {
      autoClose: run.state === 'succeeded' ? 8000 : false,
      actions: [
        {
          label: 'Show run',
          caption: 'Open the notebook and show this run in kubelab',
          callback: () => this._options.show(run)
        }
      ]
    });
  }
}
