import * as React from 'react';

import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';

import { IJob } from '../api';
import { formatAge, formatValue, stateText } from '../format';
import { JobTracker } from '../jobs';
import { ErrorBoundary } from './ErrorBoundary';
import { useNow } from './ModelView';
import { StateDot } from './StateDot';

export interface IJobsViewProps {
  jobs: ReadonlyArray<IJob>;
  error: string | null;
  /** Current time (ms), for the jobs' ages. */
  now: number;
  onOpen: (job: IJob) => void;
}

const SHOWN = 20;

/** What the user called the job (its notebook, its model), else its id. */
export function jobName(job: IJob): string {
  return String(job.spec?.name ?? job.name ?? job.id);
}

/** The base URL of a model server: its local address, or the cluster's. */
export function serverUrl(job: IJob): string | null {
  const server = job.steps.find(s => s.name === 'server');
  const url = server?.outputs?.url ?? job.url;
  return typeof url === 'string' ? url : null;
}

/** One line on what a job did: the last loss, the trials and the best, the URL. */
export function jobSummary(job: IJob): string {
  if (job.kind === 'tuning' && job.tuning) {
    const { counts, best, objective } = job.tuning;
    const of = counts.max_trials ? `/${counts.max_trials}` : '';
    const done = counts.succeeded + counts.early_stopped;
    const parts = [`${done}${of} trials`];
    if (counts.running) {
      parts.push(`${counts.running} running`);
    }
    if (counts.failed) {
      parts.push(`${counts.failed} failed`);
    }
    if (best?.objective !== null && best?.objective !== undefined) {
      parts.push(`best ${objective.metric} ${formatValue(best.objective)}`);
    }
    return parts.join(' · ');
  }
  if (job.kind === 'serving') {
    return (
      serverUrl(job) ?? (job.state === 'pending' ? 'loading the model…' : '')
    );
  }
  const metrics = Object.entries(job.metrics ?? {});
  const nodes = job.steps.length;
  const parts = nodes ? [`${nodes} node${nodes === 1 ? '' : 's'}`] : [];
  parts.push(
    ...metrics.map(([name, value]) => `${name} ${formatValue(value)}`)
  );
  return parts.join(' · ');
}

/**
 * Every job of every kind, newest first: state, kind, name, backend and age, and a
 * line on what it did. A row is a button: it opens the job's view.
 */
export function JobsView({
  jobs,
  error,
  now,
  onOpen
}: IJobsViewProps): JSX.Element {
  return (
    <div className="jp-kubelab-jobs" data-testid="kubelab-jobs">
      {error && (
        <div className="jp-kubelab-error" role="alert">
          {error}
        </div>
      )}
      {jobs.length === 0 && !error && (
        <p className="jp-kubelab-muted" data-testid="kubelab-no-jobs">
          No jobs yet. <strong>Train</strong> or <strong>Tune</strong> the
          active notebook with the buttons of this section,{' '}
          <strong>Serve</strong> a model from a run's step in the pipeline view,
          or start one from Python (<code>TrainerClient().train(…)</code>).
        </p>
      )}
      <ul className="jp-kubelab-job-list" aria-label="Jobs">
        {jobs.slice(0, SHOWN).map(job => (
          <li key={job.id}>
            <button
              className="jp-kubelab-job"
              data-testid="kubelab-job"
              data-job-id={job.id}
              data-kind={job.kind}
              data-state={job.state}
              title={`Open ${job.kind} job ${job.id}`}
              onClick={() => onOpen(job)}
            >
              <span className="jp-kubelab-job-title">
                <StateDot state={job.state} />
                <span className="jp-kubelab-job-name">{jobName(job)}</span>
                <span className="jp-kubelab-chip">{job.kind}</span>
              </span>
              <span className="jp-kubelab-run-meta">
                {stateText(job.state)} · {job.backend} ·{' '}
                {formatAge(job.created_at, now)}
              </span>
              <span
                className="jp-kubelab-job-summary"
                data-testid="kubelab-job-summary"
              >
                {jobSummary(job)}
              </span>
            </button>
          </li>
        ))}
      </ul>
      {jobs.length > SHOWN && (
        <p className="jp-kubelab-muted">
          {jobs.length - SHOWN} older jobs: <code>kubelab jobs list</code>
        </p>
      )}
    </div>
  );
}

/** The Jobs section's content: the tracker's jobs, live. */
export class JobsPanel extends ReactWidget {
  constructor(
    private readonly _tracker: JobTracker,
    private readonly _onOpen: (job: IJob) => void
  ) {
    super();
    this.addClass('jp-kubelab-jobs-panel');
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this._tracker.changed}>
        {() => (
          <ErrorBoundary part="the jobs">
            <JobsPart tracker={this._tracker} onOpen={this._onOpen} />
          </ErrorBoundary>
        )}
      </UseSignal>
    );
  }
}

function JobsPart(props: {
  tracker: JobTracker;
  onOpen: (job: IJob) => void;
}): JSX.Element {
  const now = useNow(props.tracker.active);
  return (
    <JobsView
      jobs={props.tracker.jobs}
      error={props.tracker.error}
      now={now}
      onOpen={props.onOpen}
    />
  );
}
