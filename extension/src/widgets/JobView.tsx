import * as React from 'react';

import { Dialog, MainAreaWidget, showDialog } from '@jupyterlab/apputils';
import { Button, ReactWidget, UseSignal } from '@jupyterlab/ui-components';

import { IJob, KubelabClient } from '../api';
import { formatAge, formatDuration, secondsSince } from '../format';
import { kubelabIcon } from '../icons';
import { JobTracker, jobInProgress } from '../jobs';
import { isActive } from '../runs';
import { ErrorBoundary } from './ErrorBoundary';
import { jobName } from './JobsView';
import { useNow } from './ModelView';
import { ServerJobView } from './ServerJobView';
import { StateBadge } from './StateDot';
import { IJobBodyProps, TrainingJobView } from './TrainingJobView';
import { TuningJobView } from './TuningJobView';

export interface IJobPageProps {
  client: KubelabClient;
  tracker: JobTracker;
  id: string;
  /** The job is gone (deleted here or elsewhere): close its view. */
  onDeleted: () => void;
  openLineage?: IJobBodyProps['openLineage'];
}

const STOP_LABEL: Record<string, string> = {
  training: 'Cancel',
  tuning: 'Cancel',
  serving: 'Stop'
};

/** The job's name, state, where and when, and what one can do with it. */
function JobHeader(props: {
  job: IJob;
  now: number;
  busy: boolean;
  onCancel: () => void;
  onDelete: () => void;
}): JSX.Element {
  const { job, now } = props;
  const took = formatDuration(
    secondsSince(job.created_at, job.finished_at, now)
  );
  return (
    <div className="jp-kubelab-job-header">
      <div className="jp-kubelab-details-title">
        <h2 data-testid="kubelab-job-title">{jobName(job)}</h2>
        <StateBadge state={job.state} testid="kubelab-job-state" />
      </div>
      <div className="jp-kubelab-muted">
        {job.kind} job <code>{job.id}</code> · {job.backend} · started{' '}
        {formatAge(job.created_at, now)}
        {took ? ` · ${isActive(job) ? 'for' : 'took'} ${took}` : ''}
      </div>
      <div className="jp-kubelab-actions jp-kubelab-job-actions">
        <Button
          className="jp-mod-styled"
          data-testid="kubelab-job-cancel"
          disabled={!isActive(job) || props.busy}
          onClick={props.onCancel}
        >
          {STOP_LABEL[job.kind] ?? 'Cancel'}
        </Button>
        <Button
          className="jp-mod-styled jp-mod-warn"
          data-testid="kubelab-job-delete"
          disabled={props.busy}
          onClick={props.onDelete}
        >
          Delete
        </Button>
      </div>
    </div>
  );
}

/** One job in full: its header, then what its kind shows. */
export function JobPage({
  client,
  tracker,
  id,
  onDeleted,
  openLineage
}: IJobPageProps): JSX.Element {
  const job = tracker.job(id);
  const now = useNow(job !== null && jobInProgress(job));
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [looked, setLooked] = React.useState(false);
  React.useEffect(() => {
    void tracker.refresh().then(() => setLooked(true));
  }, [tracker, id]);

  if (!job) {
    return (
      <div className="jp-kubelab-view-empty" data-testid="kubelab-job-missing">
        {tracker.error ??
          (looked ? `There is no job ${id} (any more).` : 'Loading…')}
      </div>
    );
  }
  const act = async (work: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (reason) {
      setError((reason as Error).message);
    } finally {
      setBusy(false);
      await tracker.refresh();
    }
  };
  const onDelete = async () => {
    const answer = await showDialog({
      title: `Delete ${job.kind} job ${jobName(job)}?`,
      body: isActive(job)
        ? 'It is stopped first. Its record, logs and metrics are removed.'
        : 'Its record, logs and metrics are removed.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (answer.button.accept) {
      await act(async () => {
        await client.deleteJob(job.id);
        onDeleted();
      });
    }
  };
  return (
    <div className="jp-kubelab-job-page" data-testid="kubelab-job-page">
      <JobHeader
        job={job}
        now={now}
        busy={busy}
        onCancel={() => void act(() => client.cancelJob(job.id))}
        onDelete={() => void onDelete()}
      />
      {error && (
        <div className="jp-kubelab-error" role="alert">
          {error}
        </div>
      )}
      {job.error && (
        <pre
          className="jp-kubelab-error jp-kubelab-job-error"
          data-testid="kubelab-job-error"
        >
          {job.error}
        </pre>
      )}
      <ErrorBoundary part={`the ${job.kind} job`}>
        {job.kind === 'tuning' ? (
          <TuningJobView client={client} job={job} />
        ) : job.kind === 'serving' ? (
          <ServerJobView client={client} job={job} openLineage={openLineage} />
        ) : (
          <TrainingJobView client={client} job={job} />
        )}
      </ErrorBoundary>
    </div>
  );
}

/**
 * A job in the main area: one view per job (the sidebar's Jobs section opens it, or
 * brings it to the front when it is open), live while the job runs.
 */
export class JobView extends MainAreaWidget<ReactWidget> {
  constructor(
    client: KubelabClient,
    tracker: JobTracker,
    job: IJob,
    openLineage?: IJobBodyProps['openLineage']
  ) {
    // The view closes itself once its job is deleted.
    const self: { view: JobView | null } = { view: null };
    const content = ReactWidget.create(
      <UseSignal signal={tracker.changed}>
        {() => (
          <ErrorBoundary part="the job">
            <JobPage
              client={client}
              tracker={tracker}
              id={job.id}
              onDeleted={() => self.view?.dispose()}
              openLineage={openLineage}
            />
          </ErrorBoundary>
        )}
      </UseSignal>
    );
    super({ content });
    self.view = this;
    this.id = JobView.idOf(job.id);
    this.addClass('jp-kubelab-job-view');
    this.title.icon = kubelabIcon;
    this.title.label = `${jobName(job)} (${job.kind})`;
    this.title.caption = `kubelab ${job.kind} job ${job.id}`;
    this.title.closable = true;
    this.toolbar.hide();
  }

  /** The DOM id of a job's view: one per job. */
  static idOf(jobId: string): string {
    return `kubelab-job-${jobId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }
}
