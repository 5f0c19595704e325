/**
 * The jobs this server knows (training, tuning, serving), kept fresh for the Jobs
 * section and the job views (see `LiveList`).
 */
import { IJob, KubelabClient } from './api';
import { LiveList } from './live';
import { isActive } from './runs';

const LIMIT = 100;

/**
 * Whether a job changes by itself. A model server that serves is steady (it has no
 * end): only a loading one is polled; its view reads its stats on its own.
 */
export function jobInProgress(job: IJob): boolean {
  return job.kind === 'serving' ? job.state === 'pending' : isActive(job);
}

export class JobTracker extends LiveList<IJob> {
  constructor(readonly client: KubelabClient) {
    super();
  }

  get jobs(): ReadonlyArray<IJob> {
    return this.items;
  }

  job(id: string): IJob | null {
    return this.items.find(job => job.id === id) ?? null;
  }

  protected fetch(): Promise<IJob[]> {
    return this.client.listJobs(LIMIT);
  }

  protected isActive(job: IJob): boolean {
    return jobInProgress(job);
  }
}
