/**
 * The runs this server knows, kept fresh for every view (see `LiveList`), with a
 * warning when runs of a backend (Kubeflow Pipelines) could not be read.
 */
import { FINAL_STATES, IRun, KubelabClient } from './api';
import { LiveList } from './live';

const LIMIT = 100;

export function isActive(run: { state: string }): boolean {
  return !FINAL_STATES.includes(run.state);
}

export class RunTracker extends LiveList<IRun> {
  constructor(readonly client: KubelabClient) {
    super();
  }

  /** Runs, newest first. */
  get runs(): ReadonlyArray<IRun> {
    return this.items;
  }

  /** Why runs of a backend (Kubeflow Pipelines) could not be read, or null. */
  get warning(): string | null {
    return this._warning;
  }

  protected async fetch(): Promise<IRun[]> {
    const { runs, unavailable } = await this.client.listRuns(LIMIT);
    const reasons = Object.values(unavailable);
    this._warning = reasons.length
      ? `${reasons.join('; ')} (runs shown with their last known state)`
      : null;
    return runs;
  }

  protected isActive(run: IRun): boolean {
    return isActive(run);
  }

  private _warning: string | null = null;
}
