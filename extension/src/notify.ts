/**
 * A JupyterLab notification when a run finishes out of sight (the kubelab views
 * are closed, or another notebook is the active one), or a job while its view is
 * not shown.
 */
import { Notification } from '@jupyterlab/apputils';

import { IJob, IRun } from './api';
import {
  failureLine,
  formatDuration,
  plainError,
  secondsSince
} from './format';
import { JobTracker } from './jobs';
import { LiveList } from './live';
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

/**
 * Notifies when an item of a live list (a run, a job) finishes out of sight.
 */
class FinishedNotifier<T extends { id: string; state: string }> {
  constructor(
    private readonly _list: LiveList<T>,
    private readonly _inSight: (item: T) => boolean,
    private readonly _message: (item: T) => string,
    private readonly _action: INotificationAction<T>
  ) {
    _list.finished.connect(this._onFinished, this);
  }

  dispose(): void {
    this._list.finished.disconnect(this._onFinished, this);
  }

  private _onFinished(_: unknown, item: T): void {
    if (this._inSight(item)) {
      return;
    }
    const type =
      item.state === 'succeeded' || item.state === 'running'
        ? 'success'
        : item.state === 'failed'
          ? 'error'
          : 'warning';
    const { label, caption, show } = this._action;
    Notification.emit(this._message(item), type, {
      autoClose: type === 'success' ? 8000 : false,
      actions: [{ label, caption, callback: () => show(item) }]
    });
  }
}

interface INotificationAction<T> {
  label: string;
  caption: string;
  show: (item: T) => void;
}

export class RunNotifier extends FinishedNotifier<IRun> {
  constructor(options: IRunNotifierOptions) {
    super(options.tracker, options.inSight, finishedMessage, {
      label: 'Show run',
      caption: 'Open the notebook and show this run in kubelab',
      show: options.show
    });
  }
}

/** "train_ddp: training job succeeded in 12.3 s", "forest: serving job failed: …". */
export function jobFinishedMessage(job: IJob): string {
  const name = String(job.spec?.name ?? job.id);
  const took = formatDuration(secondsSince(job.created_at, job.finished_at));
  if (job.state === 'failed') {
    const why = plainError(job.error).split('\n')[0];
    return `${name}: ${job.kind} job failed${why ? `: ${why}` : ''}`;
  }
  if (job.kind === 'serving' && job.state === 'running') {
    return `${name}: the model server is ready`;
  }
  return `${name}: ${job.kind} job ${job.state}${took ? ` in ${took}` : ''}`;
}

/** A JupyterLab notification when a job finishes while its view is not shown. */
export class JobNotifier extends FinishedNotifier<IJob> {
  constructor(options: {
    tracker: JobTracker;
    inSight: (job: IJob) => boolean;
    show: (job: IJob) => void;
  }) {
    super(options.tracker, options.inSight, jobFinishedMessage, {
      label: 'Show job',
      caption: "Open the job's view",
      show: options.show
    });
  }
}
