/**
 * The runs this server knows, kept fresh for every view: polled every second while
 * one is active, re-read on demand otherwise. It also tells when a run it saw
 * active has finished, which is what notifications are made of.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { FINAL_STATES, IRun, KubelabClient } from './api';

const POLL_MS = 1000;
const LIMIT = 100;

export function isActive(run: IRun): boolean {
  return !FINAL_STATES.includes(run.state);
}

export class RunTracker {
  constructor(readonly client: KubelabClient) {}

  /** Runs, newest first. */
  get runs(): ReadonlyArray<IRun> {
    return this._runs;
  }

  /** Why the last refresh failed, or null. */
  get error(): string | null {
    return this._error;
  }

  /** Why runs of a backend (Kubeflow Pipelines) could not be read, or null. */
  get warning(): string | null {
    return this._warning;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A run that was seen pending or running has reached a final state. */
  get finished(): ISignal<this, IRun> {
    return this._finished;
  }

  /** Re-read the runs now; keeps polling while one is active. */
  refresh(): Promise<void> {
    // One request at a time: callers that come meanwhile share the next one.
    this._next ??= (this._current ?? Promise.resolve()).then(() => {
      this._next = null;
      this._current = this._load().finally(() => (this._current = null));
      return this._current;
    });
    return this._next;
  }

  dispose(): void {
    this._disposed = true;
    window.clearTimeout(this._timer);
    Signal.clearData(this);
  }

  private async _load(): Promise<void> {
    window.clearTimeout(this._timer);
    if (this._disposed) {
      return;
    }
    try {
      const { runs, unavailable } = await this.client.listRuns(LIMIT);
      const reasons = Object.values(unavailable);
      this._warning = reasons.length
        ? `${reasons.join('; ')} (runs shown with their last known state)`
        : null;
      const finished = runs.filter(
        run => this._active.has(run.id) && !isActive(run)
      );
      this._active = new Set(runs.filter(isActive).map(run => run.id));
      this._runs = runs;
      this._error = null;
      this._changed.emit();
      finished.forEach(run => this._finished.emit(run));
    } catch (error) {
      this._error = (error as Error).message;
      this._changed.emit();
    }
    if (this._active.size > 0 && !this._disposed) {
      this._timer = window.setTimeout(() => void this.refresh(), POLL_MS);
    }
  }

  private _runs: IRun[] = [];
  private _active = new Set<string>();
  private _error: string | null = null;
  private _warning: string | null = null;
  private _timer: number | undefined;
  private _current: Promise<void> | null = null;
  private _next: Promise<void> | null = null;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
  private _finished = new Signal<this, IRun>(this);
}
