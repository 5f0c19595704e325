/**
 * A list read from the server and kept fresh for every view: polled every second
 * while one of its items is active, re-read on demand otherwise. It also tells when
 * an item it saw active has finished, which is what notifications are made of.
 * Runs (`RunTracker`) and jobs (`JobTracker`) are both such lists.
 */
import { ISignal, Signal } from '@lumino/signaling';

const POLL_MS = 1000;

export abstract class LiveList<T extends { id: string }> {
  /** Items, newest first. */
  get items(): ReadonlyArray<T> {
    return this._items;
  }

  /** Why the last refresh failed, or null. */
  get error(): string | null {
    return this._error;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** An item that was seen active has stopped being so. */
  get finished(): ISignal<this, T> {
    return this._finished;
  }

  /** Whether anything is active (and so polled). */
  get active(): boolean {
    return this._active.size > 0;
  }

  /** Re-read the list now; keeps polling while an item is active. */
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

  /** The list as the server has it now. */
  protected abstract fetch(): Promise<T[]>;

  /** Whether `item` may still change by itself (and is worth polling for). */
  protected abstract isActive(item: T): boolean;

  private async _load(): Promise<void> {
    window.clearTimeout(this._timer);
    if (this._disposed) {
      return;
    }
    try {
      const items = await this.fetch();
      const finished = items.filter(
        item => this._active.has(item.id) && !this.isActive(item)
      );
      this._active = new Set(
        items.filter(item => this.isActive(item)).map(item => item.id)
      );
      this._items = items;
      this._error = null;
      this._changed.emit();
      finished.forEach(item => this._finished.emit(item));
    } catch (error) {
      this._error = (error as Error).message;
      this._changed.emit();
    }
    if (this._active.size > 0 && !this._disposed) {
      this._timer = window.setTimeout(() => void this.refresh(), POLL_MS);
    }
  }

  private _items: T[] = [];
  private _active = new Set<string>();
  private _error: string | null = null;
  private _timer: number | undefined;
  private _current: Promise<void> | null = null;
  private _next: Promise<void> | null = null;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
  private _finished = new Signal<this, T>(this);
}
