/**
 * The sidebar's state for the active notebook: its compiled pipeline (kept fresh
 * while the user edits or re-tags cells), the offending cell of a compile error,
 * the parameter values, and the notebook's runs (polled while one is active).
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

import {
  FINAL_STATES,
  ICompileResult,
  IRun,
  IValidationReport,
  KubelabApiError,
  KubelabClient
} from './api';

/** CSS class put on the notebook cell a compile error points at. */
export const CELL_ERROR_CLASS = 'jp-kubelab-cell-error';

export interface ICompileError {
  message: string;
  cell: number | null;
  step: string | null;
}

export interface ILogSelection {
  runId: string;
  /** The run step (pipeline task) name. */
  step: string;
}

const COMPILE_DEBOUNCE_MS = 600;
const POLL_MS = 1000;

export class PipelineModel {
  constructor(readonly client: KubelabClient) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get notebook(): NotebookPanel | null {
    return this._panel;
  }

  get compiled(): ICompileResult | null {
    return this._compiled;
  }

  get compileError(): ICompileError | null {
    return this._compileError;
  }

  get compiling(): boolean {
    return this._compiling;
  }

  get runs(): IRun[] {
    return this._runs;
  }

  /** Why runs of a backend (Kubeflow Pipelines) could not be read, if so. */
  get runsWarning(): string | null {
    return this._runsWarning;
  }

  get parameterValues(): Record<string, unknown> {
    return this._values;
  }

  get selectedRun(): IRun | null {
    return (
      this._runs.find(r => r.id === this._selectedRunId) ??
      this._runs[0] ??
      null
    );
  }

  get logSelection(): ILogSelection | null {
    return this._log;
  }

  get busy(): boolean {
    return this._busy;
  }

  get actionError(): string | null {
    return this._actionError;
  }

  get validation(): IValidationReport | null {
    return this._validation;
  }

  get validating(): boolean {
    return this._validating;
  }

  /** Notebook step name for a run step (matched through the compiled task names). */
  stepOfTask(task: string): string {
    const step = this._compiled?.steps.find(s => s.task === task);
    return step?.name ?? task;
  }

  /** Follow another notebook (or none). */
  setNotebook(panel: NotebookPanel | null): void {
    if (panel === this._panel) {
      return;
    }
    this._disconnect();
    this._panel = panel;
    this._compiled = null;
    this._compileError = null;
    this._validation = null;
    this._runs = [];
    this._runsWarning = null;
    this._selectedRunId = null;
    this._log = null;
    this._actionError = null;
    this._values = {};
    if (panel) {
      panel.context.saveState.connect(this._onSaveState, this);
      panel.disposed.connect(this._onDisposed, this);
      void panel.context.ready.then(() => {
        if (this._panel !== panel || !panel.content.model) {
          return;
        }
        const cells = panel.content.model.cells;
        cells.changed.connect(this._onCellsChanged, this);
        this._onCellsChanged();
        panel.content.model.contentChanged.connect(this._schedule, this);
        void this.compile();
        void this.refreshRuns();
      });
    }
    this._changed.emit();
  }

  /** Compile the notebook as it is in the editor (saved or not). */
  async compile(): Promise<void> {
    const panel = this._panel;
    const model = panel?.content.model;
    if (!panel || !model) {
      return;
    }
    window.clearTimeout(this._compileTimer);
    const generation = ++this._compileGeneration;
    this._compiling = true;
    this._changed.emit();
    // Only what the compiler reads: no outputs, no other metadata.
    const content = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: model.sharedModel.getMetadata(),
      cells: model.sharedModel.cells.map(cell => ({
        cell_type: cell.cell_type,
        source: cell.getSource(),
        metadata: { tags: (cell.getMetadata('tags') as string[]) ?? [] },
        ...(cell.cell_type === 'code'
          ? { outputs: [], execution_count: null }
          : {})
      }))
    };
    try {
      const result = await this.client.compile(panel.context.path, {
        content
      });
      if (generation !== this._compileGeneration) {
        return;
      }
      this._compiled = result;
      this._compileError = null;
      this._syncValues(result);
    } catch (error) {
      if (generation !== this._compileGeneration) {
        return;
      }
      if (error instanceof KubelabApiError && error.status < 500) {
        this._compileError = {
          message: error.message,
          cell:
            typeof error.details.cell === 'number' ? error.details.cell : null,
          step:
            typeof error.details.step === 'string' ? error.details.step : null
        };
      } else {
        this._compileError = {
          message: (error as Error).message,
          cell: null,
          step: null
        };
      }
    } finally {
      if (generation === this._compileGeneration) {
        this._compiling = false;
        this._markErrorCell();
        this._changed.emit();
      }
    }
  }

  setParameter(name: string, value: unknown): void {
    this._values = { ...this._values, [name]: value };
    this._changed.emit();
  }

  selectRun(id: string): void {
    this._selectedRunId = id;
    this._changed.emit();
  }

  showLogs(selection: ILogSelection | null): void {
    this._log = selection;
    this._changed.emit();
  }

  /** Save the notebook, then run it as a pipeline with the form's parameters. */
  async runPipeline(): Promise<void> {
    const panel = this._panel;
    if (!panel) {
      return;
    }
    await this._action(async () => {
      if (panel.context.model.dirty) {
        await panel.context.save();
      }
      const started = await this.client.startRun(
        panel.context.path,
        this._changedValues()
      );
      this._selectedRunId = started.id;
      this._log = null;
    });
  }

  async cancel(id: string): Promise<void> {
    await this._action(() => this.client.cancelRun(id));
  }

  async rerun(id: string): Promise<void> {
    await this._action(async () => {
      const started = await this.client.rerun(id);
      this._selectedRunId = started.id;
    });
  }

  async runFrom(id: string, step: string): Promise<void> {
    await this._action(async () => {
      const panel = this._panel;
      if (panel?.context.model.dirty) {
        await panel.context.save();
      }
      const started = await this.client.runFrom(id, step);
      this._selectedRunId = started.id;
    });
  }

  async validate(): Promise<void> {
    const panel = this._panel;
    if (!panel) {
      return;
    }
    this._validating = true;
    this._validation = null;
    this._changed.emit();
    try {
      if (panel.context.model.dirty) {
        await panel.context.save();
      }
      this._validation = await this.client.validate(
        panel.context.path,
        this._changedValues()
      );
    } catch (error) {
      this._actionError = (error as Error).message;
    } finally {
      this._validating = false;
      this._changed.emit();
    }
  }

  /** Re-read the runs of this notebook; keeps polling while one is active. */
  async refreshRuns(): Promise<void> {
    const panel = this._panel;
    if (!panel) {
      return;
    }
    window.clearTimeout(this._pollTimer);
    try {
      const { runs, unavailable } = await this.client.listRuns(50);
      if (panel !== this._panel) {
        return;
      }
      this._runs = runs.filter(r => r.path === panel.context.path);
      const reasons = Object.values(unavailable);
      this._runsWarning = reasons.length
        ? `${reasons.join('; ')} (runs shown with their last known state)`
        : null;
    } catch (error) {
      this._actionError = (error as Error).message;
    }
    this._changed.emit();
    if (this._runs.some(r => !FINAL_STATES.includes(r.state))) {
      this._pollTimer = window.setTimeout(
        () => void this.refreshRuns(),
        POLL_MS
      );
    }
  }

  dispose(): void {
    this._disconnect();
    window.clearTimeout(this._pollTimer);
    window.clearTimeout(this._compileTimer);
    Signal.clearData(this);
  }

  private async _action(work: () => Promise<unknown>): Promise<void> {
    this._busy = true;
    this._actionError = null;
    this._changed.emit();
    try {
      await work();
    } catch (error) {
      this._actionError = (error as Error).message;
    } finally {
      this._busy = false;
      this._changed.emit();
      await this.refreshRuns();
    }
  }

  /** Only parameters the user changed from the notebook's defaults. */
  private _changedValues(): Record<string, unknown> {
    const params = this._compiled?.parameters ?? {};
    const changed: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(this._values)) {
      if (
        name in params &&
        JSON.stringify(value) !== JSON.stringify(params[name].default)
      ) {
        changed[name] = value;
      }
    }
    return changed;
  }

  /** Keep values the user typed for parameters that still exist with that type. */
  private _syncValues(result: ICompileResult): void {
    const previous = this._compiled?.parameters ?? {};
    const values: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(result.parameters)) {
      const edited =
        name in this._values &&
        previous[name]?.type === spec.type &&
        JSON.stringify(previous[name]?.default) ===
          JSON.stringify(spec.default);
      values[name] = edited ? this._values[name] : spec.default;
    }
    this._values = values;
  }

  private _markErrorCell(): void {
    const panel = this._panel;
    if (!panel) {
      return;
    }
    const index = this._compileError?.cell;
    panel.content.widgets.forEach((cell, i) => {
      cell.toggleClass(CELL_ERROR_CLASS, i === index);
    });
  }

  private _schedule(): void {
    window.clearTimeout(this._compileTimer);
    this._compileTimer = window.setTimeout(
      () => void this.compile(),
      COMPILE_DEBOUNCE_MS
    );
  }

  private _onCellsChanged(): void {
    const model = this._panel?.content.model;
    if (!model) {
      return;
    }
    // Connecting twice is a no-op in Lumino, so every cell is wired exactly once.
    for (let i = 0; i < model.cells.length; i++) {
      model.cells.get(i).metadataChanged.connect(this._schedule, this);
    }
    this._schedule();
  }

  private _onSaveState(_: unknown, state: string): void {
    if (state === 'completed') {
      void this.compile();
    }
  }

  private _onDisposed(): void {
    this.setNotebook(null);
  }

  private _disconnect(): void {
    const panel = this._panel;
    if (!panel) {
      return;
    }
    panel.context.saveState.disconnect(this._onSaveState, this);
    panel.disposed.disconnect(this._onDisposed, this);
    const model = panel.content.model;
    if (model) {
      model.cells.changed.disconnect(this._onCellsChanged, this);
      model.contentChanged.disconnect(this._schedule, this);
      for (let i = 0; i < model.cells.length; i++) {
        model.cells.get(i).metadataChanged.disconnect(this._schedule, this);
      }
    }
    if (!panel.isDisposed) {
      panel.content.widgets.forEach(cell =>
        cell.toggleClass(CELL_ERROR_CLASS, false)
      );
    }
    window.clearTimeout(this._compileTimer);
  }

  private _panel: NotebookPanel | null = null;
  private _compiled: ICompileResult | null = null;
  private _compileError: ICompileError | null = null;
  private _compiling = false;
  private _compileGeneration = 0;
  private _compileTimer: number | undefined;
  private _pollTimer: number | undefined;
  private _runs: IRun[] = [];
  private _runsWarning: string | null = null;
  private _selectedRunId: string | null = null;
  private _log: ILogSelection | null = null;
  private _values: Record<string, unknown> = {};
  private _busy = false;
  private _actionError: string | null = null;
  private _validation: IValidationReport | null = null;
  private _validating = false;
  private _changed = new Signal<this, void>(this);
}
