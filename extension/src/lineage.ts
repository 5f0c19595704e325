/**
 * The typed client's part for Compare runs and lineage (issue 19): the JSON of
 * `GET runs/compare` and `GET lineage` (server/kubelab/server/lineage.py).
 */

import { KubelabClient, RunState } from './api';

// Each list of a comparison is aligned with its `runs`.

export interface ICompareRun {
  /** What was asked for: a run id, or `JOB/STEP` for one trial of a tuning job. */
  ref: string;
  id: string;
  step: string | null;
  name: string;
  kind: string;
  state: RunState;
  created_at: string | null;
  finished_at: string | null;
  experiment: string | null;
  user: string | null;
  backend: string;
  image: string | null;
  source: {
    path: string | null;
    relative_path?: string | null;
    digest: string | null;
    git: { commit: string; dirty: boolean; repository?: string } | null;
  };
  environment: {
    digest: string | null;
    python: string | null;
    platform?: string | null;
  };
}

/** A parameter or metric across the compared runs. */
export interface ICompareRow {
  name: string;
  values: unknown[];
  missing: boolean[];
  changed: boolean;
}

export interface ISeriesPoint {
  step: number | null;
  value: number;
  ts: number;
}

/** A metric's points per step/epoch, one line per compared run (`task` "" for trials). */
export interface ICompareSeries {
  task: string;
  metric: string;
  runs: ISeriesPoint[][];
}

export interface ICompareStep {
  name: string;
  display_name: string;
  step: string | null;
  states: (RunState | null)[];
  cached: (boolean | null)[];
  durations: (number | null)[];
  code_digests: (string | null)[];
  code_changed: boolean;
  /** Unified diff of each run's step code against the first run's (null: the same). */
  diffs: (string | null)[];
  images: (string | null)[];
  image_changed: boolean;
  parameters_changed: boolean;
  inputs_changed: boolean;
}

export interface ICompareArtifact {
  step: string;
  name: string;
  type: string;
  /** Data from outside the run: imported, read from a file, or a pipeline input. */
  external: boolean;
  digests: (string | null)[];
  uris: (string | null)[];
  changed: boolean;
}

export interface IComparison {
  runs: ICompareRun[];
  source_changed: boolean;
  parameters: ICompareRow[];
  metrics: ICompareRow[];
  series: ICompareSeries[];
  steps: ICompareStep[];
  inputs: ICompareArtifact[];
  outputs: ICompareArtifact[];
  environment: {
    digests: (string | null)[];
    python: (string | null)[];
    changed: boolean;
  };
}

/** Where a run came from: source snapshot, parameters, environment, who. */
export interface IRunFacts {
  run: string;
  kind: string;
  name: string;
  experiment: string | null;
  parameters: Record<string, unknown>;
  user: string | null;
  backend: string;
  source: {
    path: string | null;
    relative_path?: string | null;
    digest: string | null;
    git: { commit: string; dirty: boolean } | null;
  } | null;
  environment: { digest: string | null; python: string | null } | null;
}

/** An artifact (ML Metadata's): a dataset, a model, a notebook value, a file. */
export interface ILineageArtifact {
  id: number;
  type: string;
  name: string;
  uri: string | null;
  digest: string | null;
  properties: Record<string, unknown>;
  /** The execution that wrote it (null: it came from outside, e.g. a data file). */
  producer: number | null;
}

/** A step's execution: which step of which run, its parameters, cached or not. */
export interface ILineageExecution {
  id: number;
  type: string;
  name: string;
  state: string;
  run: string;
  properties: {
    task?: string;
    step?: string;
    inputs?: Record<string, unknown>;
    cached?: boolean;
    code_digest?: string;
    image?: string;
    [key: string]: unknown;
  };
}

/** `GET lineage`: an artifact, what produced it, and back to the runs' sources. */
export interface ILineageGraph {
  artifact: ILineageArtifact;
  artifacts: ILineageArtifact[];
  executions: ILineageExecution[];
  edges: {
    artifact: number;
    execution: number;
    type: 'INPUT' | 'OUTPUT';
    name: string;
  }[];
  consumers: { execution: number; run: string; name: string; step: string }[];
  runs: Record<string, IRunFacts>;
}

/** Parameters, metrics, curves, code, data and cache of 2..10 runs (or trials). */
export function compareRuns(
  client: KubelabClient,
  refs: string[]
): Promise<IComparison> {
  const query = refs.map(r => `runs=${encodeURIComponent(r)}`).join('&');
  return client.request<IComparison>(`runs/compare?${query}`);
}

/** How an artifact is named: a run step's output, `RUN/STEP/OUTPUT`, or its URI. */
export type LineageKey = 'ref' | 'uri';

/** The lineage of an artifact (a run step's output, or the file a model server loads). */
export function artifactLineage(
  client: KubelabClient,
  artifact: string,
  by: LineageKey = 'ref'
): Promise<ILineageGraph> {
  return client.request<ILineageGraph>(
    `lineage?${by}=${encodeURIComponent(artifact)}`
  );
}
