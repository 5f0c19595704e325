/**
 * Typed client for the kubelab REST API (`/kubelab/api/...`).
 *
 * Every call goes through Jupyter's ServerConnection so it carries the
 * session's auth token and XSRF cookie; errors come back as `KubelabApiError`
 * with the server's JSON `{message, ...}` body.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { CellRole } from './tags';

export interface IBackend {
  name: string;
  available: boolean;
  reason?: string | null;
}

export interface IIdentity {
  user: string;
  name: string;
  groups: string[];
}

export interface IProfile {
  slug: string;
  display_name?: string;
  image?: string;
  [key: string]: unknown;
}

export interface IStatus {
  version: string;
  backends: IBackend[];
  default_backend: string;
  identity: IIdentity;
  profile: IProfile | null;
}

/** A pipeline parameter declared in the `pipeline-parameters` cell. */
export interface IParameterSpec {
  type: 'int' | 'float' | 'str' | 'bool' | 'list' | 'dict' | string;
  default: unknown;
}

/** One notebook step as compiled by the server. */
export interface ICompiledStep {
  name: string;
  /** The pipeline task this step becomes (the `name` of its run step). */
  task: string;
  /** Indices of the notebook cells (among all cells) that make up the step. */
  cells: number[];
  depends_on: string[];
  inputs: string[];
  outputs: string[];
  parameters: string[];
  limits: Record<string, string>;
  image: string | null;
}

export interface IEdge {
  from: string;
  to: string;
  variables: string[];
}

/** A code cell's place in the pipeline (cells the compiler did not group are absent). */
export interface ICellRole {
  /** Index among all the notebook's cells (0-based; shown 1-based). */
  index: number;
  role: Exclude<CellRole, 'none'>;
  /** The step the cell is part of (`step` and `pipeline-metrics` cells). */
  step: string | null;
}

export interface ICompileResult {
  name: string;
  path: string;
  steps: ICompiledStep[];
  parameters: Record<string, IParameterSpec>;
  metrics: string[];
  edges: IEdge[];
  cells: ICellRole[];
  warnings: string[];
  ir?: Record<string, unknown>;
}

export type RunState =
  'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export const FINAL_STATES: ReadonlyArray<string> = [
  'succeeded',
  'failed',
  'skipped',
  'cancelled'
];

/** What every step has: of a run, or of a job (a node, a trial, a model server). */
export interface IStepBase {
  name: string;
  display_name: string;
  state: RunState;
  started_at: string | null;
  finished_at: string | null;
  duration_s: number | null;
  error: string | null;
}

export interface IRunStep extends IStepBase {
  cached: boolean;
  attempts: number;
  cells: number[];
  outputs: Record<string, unknown>;
  /** The run (and its task) whose result a cached step reused, and how long it took. */
  cached_from: {
    run: string;
    task: string;
    number: number | null;
    duration_s: number | null;
  } | null;
  /** The notebook cell (0-based index) and line where a failed step raised. */
  failed_at: { cell: number; line: number | null } | null;
}

/** How a run came about: parameters set by hand, a re-run, or a run from a step. */
export interface IRunOrigin {
  arguments?: Record<string, unknown>;
  rerun_of?: string;
  rerun_of_number?: number | null;
  from_run?: string;
  from_run_number?: number | null;
  from_step?: string;
}

export interface IRun {
  id: string;
  name: string;
  /** Numbered per notebook: #1, #2, ... */
  number: number | null;
  /** `#7 · n_estimators=50`, `#8 · re-run of #7`, `#9 · from train_forest`. */
  label: string;
  origin: IRunOrigin;
  state: RunState;
  created_at: string;
  finished_at: string | null;
  parameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  error: string | null;
  source: string | null;
  /** The notebook path relative to the Jupyter root, when it is under it. */
  path: string | null;
  backend: string;
  steps: IRunStep[];
  /** The run in the Kubeflow Pipelines UI (runs of the kubernetes backend). */
  url?: string | null;
}

/** Runs of every configured backend; `unavailable` says why a backend could not be read. */
export interface IRunList {
  runs: IRun[];
  unavailable: Record<string, string>;
}

export interface IStartedRun {
  id: string;
  backend: string;
}

export interface ILogChunk {
  text: string;
  /** Where the next call should start (bytes). */
  offset: number;
  /** The step has finished and the whole log was returned. */
  complete: boolean;
  state: RunState;
}

export interface IValidationReport {
  notebook: string;
  ok: boolean;
  errors: { message: string; cell?: number | null; step?: string | null }[];
  steps: {
    name: string;
    ok: boolean;
    error: string | null;
    cell: number | null;
  }[];
  variables: {
    name: string;
    producer: string;
    consumers: string[];
    marshaller: string | null;
    ok: boolean;
    error: string | null;
    type: string | null;
  }[];
  metrics: Record<string, number>;
  warnings: string[];
  seconds: number;
}

/** What kind of workload a job is. */
export type JobKind = 'training' | 'tuning' | 'serving';

export const JOB_KINDS: ReadonlyArray<JobKind> = [
  'training',
  'tuning',
  'serving'
];

/** A step of a job: a node of a training job, a trial, a model server. */
export interface IJobStep extends IStepBase {
  outputs: Record<string, any>;
  /** Training: where the node ran ("cpu", "cuda"), its GPUs and ranks. */
  device?: string;
  device_count?: number;
  gpus?: number[];
  ranks?: number[];
}

/** A trial of a tuning job, as the tuning view lists it. */
export interface ITrial {
  name: string;
  parameters: Record<string, unknown>;
  /** Per metric: its min, max and latest value. */
  metrics: Record<string, { min?: number; max?: number; latest?: number }>;
  objective: number | null;
  /** Katib's condition: Succeeded, EarlyStopped, Failed, Killed, Running, ... */
  condition: string;
  state: RunState;
  started_at: string | null;
  finished_at: string | null;
  duration_s: number | null;
  error: string | null;
  best: boolean;
}

/** What the server adds to a tuning job: objective, counts, trials, best, chart. */
export interface ITuningView {
  objective: {
    metric: string | null;
    type: 'minimize' | 'maximize' | null;
    goal: number | null;
    strategy: string | null;
  };
  algorithm: { name: string | null; settings: Record<string, unknown> };
  parameters: { name: string; parameterType: string }[];
  counts: {
    trials: number;
    succeeded: number;
    early_stopped: number;
    failed: number;
    running: number;
    pending: number;
    killed: number;
    max_trials: number | null;
    parallel_trials: number | null;
  };
  best: {
    trial: string;
    parameters: Record<string, unknown>;
    objective: number | null;
  } | null;
  trials: ITrial[];
  chart: {
    index: number;
    trial: string;
    objective: number | null;
    condition: string;
    best_so_far: number | null;
  }[];
  message: string | null;
}

/** A training, tuning or serving job as the jobs API answers it. */
export interface IJob {
  id: string;
  name: string;
  label: string;
  kind: JobKind;
  backend: string;
  state: RunState;
  created_at: string;
  finished_at: string | null;
  metrics: Record<string, unknown>;
  error: string | null;
  warnings: string[];
  steps: IJobStep[];
  /** The normalised spec (its `name` is what the user called the job). */
  spec: Record<string, any>;
  /** Tuning jobs: trials, best trial, chart. */
  tuning?: ITuningView;
  /** Serving jobs on a cluster: the InferenceService's URL. */
  url?: string | null;
}

export interface ICreatedJob {
  id: string;
  kind: JobKind;
  backend: string;
}

/** One reported value of a metric. */
export interface IMetricPoint {
  step: number | null;
  value: number;
}

/** `{step: {metric: points}}`: what each step of a job reported. */
export type MetricSeries = Record<string, Record<string, IMetricPoint[]>>;

/** An output of a run step; `servable` when it is a model a server can load. */
export interface IRunOutput {
  name: string;
  uri: string;
  schema_title: string | null;
  servable: { format: string; type: string | null } | null;
}

/** A v2 inference request (Open Inference Protocol). */
export interface IInferRequest {
  inputs: {
    name: string;
    shape: number[];
    datatype: string;
    data: unknown[];
  }[];
  [key: string]: unknown;
}

/** A model server's view: state, where it answers, stats and a request to try. */
export interface IServerView {
  job: IJob;
  name: string;
  state: RunState;
  ready: boolean;
  url: string | null;
  proxy_url: string;
  format: string | null;
  model: string | null;
  metadata: Record<string, unknown> | null;
  stats: {
    requests: number;
    errors: number;
    by_code: Record<string, number>;
    latency_ms: { mean: number; p50: number | null; p99: number | null } | null;
  } | null;
  example: IInferRequest | null;
  log_tail: string;
}

/** An error answered by the server, with its JSON details (e.g. `cell`). */
export class KubelabApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly details: Record<string, unknown> = {}
  ) {
    super(message);
  }
}

export class KubelabClient {
  constructor(
    private readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  status(): Promise<IStatus> {
    return this.request<IStatus>('status');
  }

  /**
   * Compile a notebook into a pipeline. `content` compiles the unsaved notebook
   * model instead of the file; `ir` asks for the KFP IR as well.
   */
  compile(
    path: string,
    options: { content?: unknown; ir?: boolean } = {}
  ): Promise<ICompileResult> {
    return this.post<ICompileResult>('pipelines/compile', {
      path,
      ir: options.ir ?? false,
      ...(options.content !== undefined ? { content: options.content } : {})
    });
  }

  validate(
    path: string,
    parameters: Record<string, unknown> = {}
  ): Promise<IValidationReport> {
    return this.post<IValidationReport>('pipelines/validate', {
      path,
      parameters
    });
  }

  startRun(
    path: string,
    parameters: Record<string, unknown>,
    backend?: string
  ): Promise<IStartedRun> {
    return this.post<IStartedRun>('runs', { path, parameters, backend });
  }

  async listRuns(limit = 100): Promise<IRunList> {
    const body = await this.request<IRunList>(`runs?limit=${limit}`);
    return { runs: body.runs, unavailable: body.unavailable ?? {} };
  }

  getRun(id: string): Promise<IRun> {
    return this.request<IRun>(`runs/${encodeURIComponent(id)}`);
  }

  cancelRun(id: string): Promise<IRun> {
    return this.post<IRun>(`runs/${encodeURIComponent(id)}/cancel`, {});
  }

  rerun(id: string): Promise<IStartedRun> {
    return this.post<IStartedRun>(`runs/${encodeURIComponent(id)}/rerun`, {});
  }

  /** Re-run `step` (task or notebook step name) and its downstream. */
  runFrom(id: string, step: string): Promise<IStartedRun> {
    return this.post<IStartedRun>(
      `runs/${encodeURIComponent(id)}/steps/${encodeURIComponent(step)}/run-from`,
      {}
    );
  }

  /** A chunk of a step log from byte `offset`; call again from the answer's offset. */
  stepLogs(id: string, step: string, offset = 0): Promise<ILogChunk> {
    return this.request<ILogChunk>(
      `runs/${encodeURIComponent(id)}/steps/${encodeURIComponent(step)}/logs?offset=${offset}`
    );
  }

  /** A run step's outputs, and which of them are models (for Serve). */
  async runOutputs(id: string, step: string): Promise<IRunOutput[]> {
    const body = await this.request<{ outputs: IRunOutput[] }>(
      `runs/${encodeURIComponent(id)}/steps/${encodeURIComponent(step)}/outputs`
    );
    return body.outputs;
  }

  /** Training, tuning and serving jobs, newest first. */
  async listJobs(limit = 100): Promise<IJob[]> {
    const body = await this.request<{ jobs: IJob[] }>(`jobs?limit=${limit}`);
    return body.jobs;
  }

  getJob(id: string): Promise<IJob> {
    return this.request<IJob>(`jobs/${encodeURIComponent(id)}`);
  }

  /** Start a job; a 400 names the spec field it is about in `details.field`. */
  createJob(
    kind: JobKind,
    spec: Record<string, unknown>,
    backend?: string
  ): Promise<ICreatedJob> {
    return this.post<ICreatedJob>('jobs', { kind, spec, backend });
  }

  cancelJob(id: string): Promise<IJob> {
    return this.post<IJob>(`jobs/${encodeURIComponent(id)}/cancel`, {});
  }

  deleteJob(id: string): Promise<{ id: string; deleted: boolean }> {
    return this.request(`jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  async jobMetrics(id: string): Promise<MetricSeries> {
    const body = await this.request<{ series: MetricSeries }>(
      `jobs/${encodeURIComponent(id)}/metrics`
    );
    return body.series;
  }

  /** A chunk of a job step's log from byte `offset` (as `stepLogs`). */
  jobLogs(id: string, step: string, offset = 0): Promise<ILogChunk> {
    return this.request<ILogChunk>(
      `jobs/${encodeURIComponent(id)}/steps/${encodeURIComponent(step)}/logs?offset=${offset}`
    );
  }

  servingView(id: string): Promise<IServerView> {
    return this.request<IServerView>(`serving/${encodeURIComponent(id)}`);
  }

  /** A v2 inference request to model `model` of server job `id`, through Jupyter. */
  infer(id: string, model: string, body: unknown): Promise<unknown> {
    return this.post(
      `serving/${encodeURIComponent(id)}/v2/models/${encodeURIComponent(model)}/infer`,
      body
    );
  }

  private post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>(path, {
      method: 'POST',
      body: JSON.stringify(body)
    });
  }

  /** Low-level call; `path` is relative to `/kubelab/api/`. */
  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const [route, query] = path.split('?', 2);
    const url =
      URLExt.join(this.settings.baseUrl, 'kubelab', 'api', route) +
      (query ? `?${query}` : '');
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new ServerConnection.NetworkError(error as TypeError);
    }
    const text = await response.text();
    let body: any = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = { message: text };
      }
    }
    if (!response.ok) {
      // kubelab answers `{message}`, a model server `{error}`.
      const message = body?.message ?? body?.error ?? response.statusText;
      throw new KubelabApiError(message, response.status, body ?? {});
    }
    return body as T;
  }
}
