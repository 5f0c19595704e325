/**
 * The state every kubelab view shows for the active notebook: its compiled pipeline
 * (kept fresh while the user edits or re-tags cells), the offending cell of a
 * compile error, the active cell, the parameter values, the notebook's runs, and
 * which run and step the user is looking at.
 *
 * The model reads the active cell from the notebook each time instead of keeping
 * it, so no view can act on a cell of another notebook or on a disposed cell.
 */
import { Notebook, NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

import {
  ICellRole,
  ICompiledStep,
  ICompileResult,
  IRun,
  IRunStep,
  IValidationReport,
  KubelabApiError,
  KubelabClient
} from './api';
import { RunTracker } from './runs';
import { formatTags, parseTags } from './tags';

/** CSS class put on the notebook cell a compile error points at. */
export const CELL_ERROR_CLASS = 'jp-kubelab-cell-error';

export type NotebookCell = NonNullable<Notebook['activeCell']>;

export interface ICompileError {
  message: string;
  cell: number | null;
  step: string | null;
}

const COMPILE_DEBOUNCE_MS = 600;

export class PipelineModel {
  constructor(
    readonly client: KubelabClient,
    readonly tracker: RunTracker,
    /** Bring a notebook to the front (its tab, the shell's focus). */
    private readonly _reveal: (panel: NotebookPanel) => void = () => undefined
  ) {
    tracker.changed.connect(this._onRunsChanged, this);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get notebook(): NotebookPanel | null {
    return this._panel;
  }

  /** The notebook's path relative to the Jupyter root, or null. */
  get path(): string | null {
    return this._panel?.context.path ?? null;
  }

  /** The active code or markdown cell of the active notebook, never a disposed one. */
  get activeCell(): NotebookCell | null {
    const cell = this._panel?.content.activeCell;
    return cell && !cell.isDisposed && cell.model ? cell : null;
  }

  get activeCellIndex(): number {
    return this._panel?.content.activeCellIndex ?? -1;
  }

  get compiled(): ICompileResult | null {
    return this._compiled;
  }

  /** Why the notebook does not compile (never for a notebook nobody tagged yet). */
  get compileError(): ICompileError | null {
    return this._untagged ? null : this._compileError;
  }

  get compiling(): boolean {
    return this._compiling;
  }

  /** The notebook has compiled and has at least one step. */
  get hasSteps(): boolean {
    return (this._compiled?.steps.length ?? 0) > 0;
  }

  /**
   * The notebook is not a pipeline yet: no cell carries a kubelab tag, or it
   * compiles to no step. Not an error; the views show how to start.
   */
  get empty(): boolean {
    return this._untagged || (this._compiled !== null && !this.hasSteps);
  }

  get runs(): IRun[] {
    return this._runs;
  }

  get runsError(): string | null {
    return this.tracker.error;
  }

  /** Why runs of a backend (Kubeflow Pipelines) could not be read, if so. */
  get runsWarning(): string | null {
    return this.tracker.warning;
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

  /** The notebook step the user is looking at (in the graph, the list, a cell label). */
  get selectedStep(): string | null {
    return this._selectedStep;
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

  step(name: string): ICompiledStep | null {
    return this._compiled?.steps.find(s => s.name === name) ?? null;
  }

  /** The run step of notebook step `name` in `run` (the selected run by default). */
  runStep(name: string, run: IRun | null = this.selectedRun): IRunStep | null {
    return (
      run?.steps.find(s => this.stepOfTask(s.name) === name) ??
      run?.steps.find(s => s.display_name === name) ??
      null
    );
  }

  /** The role of the cell at `index` in the compiled pipeline. */
  cellRole(index: number): ICellRole | null {
    return this._compiled?.cells?.find(c => c.index === index) ?? null;
  }

  /** Position of a step in the notebook, for its colour. */
  stepIndex(name: string): number {
    return this._compiled?.steps.findIndex(s => s.name === name) ?? -1;
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
    this._untagged = false;
    this._validation = null;
    this._runs = [];
    this._selectedRunId = null;
    this._selectedStep = null;
    this._actionError = null;
    this._values = {};
    if (panel) {
      panel.context.saveState.connect(this._onSaveState, this);
      panel.disposed.connect(this._onDisposed, this);
      panel.content.activeCellChanged.connect(this._emit, this);
      void panel.context.ready.then(() => {
        if (this._panel !== panel || !panel.content.model) {
          return;
        }
        const cells = panel.content.model.cells;
        cells.changed.connect(this._onCellsChanged, this);
        this._onCellsChanged();
        panel.content.model.contentChanged.connect(this._schedule, this);
        void this.compile();
        this._onRunsChanged();
        this._changed.emit();
      });
      void this.tracker.refresh();
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
    this._untagged = !model.sharedModel.cells.some(cell => {
      const tags = cell.getMetadata('tags');
      const spec = parseTags(Array.isArray(tags) ? (tags as string[]) : []);
      return spec.role !== 'none' || spec.prev.length > 0;
    });
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
      const details =
        error instanceof KubelabApiError && error.status < 500
          ? error.details
          : {};
      this._compiled = null;
      this._compileError = {
        message: (error as Error).message,
        cell: typeof details.cell === 'number' ? details.cell : null,
        step: typeof details.step === 'string' ? details.step : null
      };
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

  selectStep(name: string | null): void {
    this._selectedStep = name;
    this._logRequest = 0;
    this._changed.emit();
  }

  /** Select `name` and ask the pipeline view to bring its log into view. */
  showLog(name: string): void {
    this._selectedStep = name;
    this._logRequest = ++this._logRequests;
    this._changed.emit();
  }

  /** Non-zero (and new each time) while the selected step's log was asked for. */
  get logRequest(): number {
    return this._logRequest;
  }

  /**
   * Make cell `index` the active one and scroll it into view; with `reveal`, also
   * bring the notebook to the front and give it the focus ("Go to cell").
   */
  goToCell(index: number, reveal = false): void {
    const panel = this._panel;
    if (!panel || index < 0 || index >= panel.content.widgets.length) {
      return;
    }
    if (reveal) {
      this._reveal(panel);
    }
    panel.content.activeCellIndex = index;
    panel.content.mode = 'command';
    void panel.content.scrollToCell(panel.content.widgets[index], 'center');
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

  /** Re-run `task` (a run step name) of run `id` and everything downstream of it. */
  async runFrom(id: string, task: string): Promise<void> {
    await this._action(async () => {
      const panel = this._panel;
      if (panel?.context.model.dirty) {
        await panel.context.save();
      }
      const started = await this.client.runFrom(id, task);
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
    this._actionError = null;
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

  /** Tag the active code cell `step:NAME` with a fresh name; returns the name. */
  makeActiveCellAStep(): string | null {
    const cell = this.activeCell;
    if (!cell || cell.model.type !== 'code') {
      return null;
    }
    const tags = cell.model.getMetadata('tags');
    const spec = parseTags(Array.isArray(tags) ? tags : []);
    if (spec.role === 'step' && spec.step) {
      return spec.step;
    }
    const taken = this._compiled?.steps.map(s => s.name) ?? [];
    let name = '';
    for (let i = 1; !name || taken.includes(name); i++) {
      name = `step${i}`;
    }
    cell.model.setMetadata(
      'tags',
      formatTags({ ...spec, role: 'step', step: name })
    );
    return name;
  }

  /** Re-read the runs of this notebook. */
  refreshRuns(): Promise<void> {
    return this.tracker.refresh();
  }

  dispose(): void {
    this._disconnect();
    this.tracker.changed.disconnect(this._onRunsChanged, this);
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
      await this.tracker.refresh();
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
    const previous = this._compiled?.parameters ?? this._lastParameters;
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
    this._lastParameters = result.parameters;
  }

  private _onRunsChanged(): void {
    const path = this.path;
    this._runs = path ? this.tracker.runs.filter(r => r.path === path) : [];
    this._changed.emit();
  }

  private _markErrorCell(): void {
    const panel = this._panel;
    if (!panel) {
      return;
    }
    const index = this.compileError?.cell;
    panel.content.widgets.forEach((cell, i) => {
      cell.toggleClass(CELL_ERROR_CLASS, i === index);
    });
  }

  private _emit(): void {
    this._changed.emit();
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
    panel.content.activeCellChanged.disconnect(this._emit, this);
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
  private _untagged = false;
  private _compiling = false;
  private _compileGeneration = 0;
  private _compileTimer: number | undefined;
  private _runs: IRun[] = [];
  private _selectedRunId: string | null = null;
  private _selectedStep: string | null = null;
  private _logRequest = 0;
  private _logRequests = 0;
  private _values: Record<string, unknown> = {};
  private _lastParameters: ICompileResult['parameters'] = {};
  private _busy = false;
  private _actionError: string | null = null;
  private _validation: IValidationReport | null = null;
  private _validating = false;
  private _changed = new Signal<this, void>(this);
}
