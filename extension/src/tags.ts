/**
 * Kale-compatible cell tags (cell metadata `tags`), parsed and written back.
 *
 * | tag                         | meaning                                   |
 * |-----------------------------|-------------------------------------------|
 * | imports, functions          | prepended to every step                   |
 * | pipeline-parameters         | typed pipeline parameters                 |
 * | pipeline-metrics            | run metrics                               |
 * | step:NAME                   | starts step NAME                          |
 * | prev:NAME                   | explicit dependency on step NAME          |
 * | skip                        | left out of the pipeline                  |
 * | limit:cpu:N, limit:memory:Q, limit:nvidia.com/gpu:N, image:REF | resources |
 */

export type CellRole =
  | 'none'
  | 'step'
  | 'imports'
  | 'functions'
  | 'pipeline-parameters'
  | 'pipeline-metrics'
  | 'skip';

export const ROLES: { value: CellRole; label: string }[] = [
  { value: 'none', label: 'Part of the previous step' },
  { value: 'step', label: 'Starts a step' },
  { value: 'imports', label: 'Imports' },
  { value: 'functions', label: 'Functions' },
  { value: 'pipeline-parameters', label: 'Pipeline parameters' },
  { value: 'pipeline-metrics', label: 'Pipeline metrics' },
  { value: 'skip', label: 'Skip' }
];

export const GPU_KEY = 'nvidia.com/gpu';

export interface ICellTags {
  role: CellRole;
  step: string;
  prev: string[];
  cpu: string;
  memory: string;
  gpu: string;
  image: string;
  /** Tags kubelab does not manage, kept as they are. */
  other: string[];
}

const ROLE_TAGS = new Set<string>([
  'imports',
  'functions',
  'pipeline-parameters',
  'pipeline-metrics',
  'skip'
]);

export function parseTags(tags: ReadonlyArray<string>): ICellTags {
  const parsed: ICellTags = {
    role: 'none',
    step: '',
    prev: [],
    cpu: '',
    memory: '',
    gpu: '',
    image: '',
    other: []
  };
  for (const tag of tags) {
    if (ROLE_TAGS.has(tag)) {
      parsed.role = tag as CellRole;
    } else if (tag.startsWith('step:')) {
      parsed.role = 'step';
      parsed.step = tag.slice('step:'.length);
    } else if (tag.startsWith('prev:')) {
      parsed.prev.push(tag.slice('prev:'.length));
    } else if (tag.startsWith('image:')) {
      parsed.image = tag.slice('image:'.length);
    } else if (tag.startsWith('limit:')) {
      const rest = tag.slice('limit:'.length);
      const cut = rest.lastIndexOf(':');
      const key = cut > 0 ? rest.slice(0, cut) : rest;
      const value = cut > 0 ? rest.slice(cut + 1) : '';
      if (key === 'cpu') {
        parsed.cpu = value;
      } else if (key === 'memory') {
        parsed.memory = value;
      } else if (key === GPU_KEY) {
        parsed.gpu = value;
      } else {
        parsed.other.push(tag);
      }
    } else {
      parsed.other.push(tag);
    }
  }
  return parsed;
}

/** The tag list for `spec`; step-only settings are dropped for other roles. */
export function formatTags(spec: ICellTags): string[] {
  const tags: string[] = [];
  if (spec.role === 'step') {
    tags.push(`step:${spec.step.trim()}`);
  } else if (spec.role !== 'none') {
    tags.push(spec.role);
  }
  if (spec.role === 'step' || spec.role === 'none') {
    for (const prev of spec.prev) {
      if (prev.trim()) {
        tags.push(`prev:${prev.trim()}`);
      }
    }
  }
  if (spec.role === 'step') {
    if (spec.cpu.trim()) {
      tags.push(`limit:cpu:${spec.cpu.trim()}`);
    }
    if (spec.memory.trim()) {
      tags.push(`limit:memory:${spec.memory.trim()}`);
    }
    if (spec.gpu.trim()) {
      tags.push(`limit:${GPU_KEY}:${spec.gpu.trim()}`);
    }
    if (spec.image.trim()) {
      tags.push(`image:${spec.image.trim()}`);
    }
  }
  return [...tags, ...spec.other];
}

/** A step name as the compiler accepts it (a letter or `_`, then letters, digits, `_`, `-`). */
export function isValidStepName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name);
}
