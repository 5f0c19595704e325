/**
 * How kubelab words things for people: cell numbers as JupyterLab users count them
 * (1-based), durations, a failed step in one line, and step logs with kubelab's own
 * frames folded and no server paths.
 */
import { IRunStep } from './api';

/** A cell index (0-based, as the server sends it) as people count cells: "cell 13". */
export function cellLabel(index: number): string {
  return `cell ${index + 1}`;
}

/** "cell 6", "cells 6–7", "cells 2, 5–7". */
export function cellsLabel(indices: ReadonlyArray<number>): string {
  if (indices.length === 0) {
    return 'no cells';
  }
  const sorted = [...indices].sort((a, b) => a - b);
  const ranges: string[] = [];
  let start = sorted[0];
  let end = start;
  for (const index of [...sorted.slice(1), Number.NaN]) {
    if (index === end + 1) {
      end = index;
      continue;
    }
    ranges.push(start === end ? `${start + 1}` : `${start + 1}–${end + 1}`);
    start = end = index;
  }
  return `${sorted.length === 1 ? 'cell' : 'cells'} ${ranges.join(', ')}`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}

/** Seconds from an ISO time to `end` (or to now). */
export function secondsSince(
  start: string | null,
  end: string | null = null,
  now = Date.now()
): number | null {
  const from = start ? Date.parse(start) : Number.NaN;
  const to = end ? Date.parse(end) : now;
  return Number.isFinite(from) && Number.isFinite(to)
    ? Math.max(0, (to - from) / 1000)
    : null;
}

/** How long ago an ISO time was: "just now", "40 s ago", "3 min ago", "2 h ago". */
export function formatAge(iso: string | null, now = Date.now()): string {
  const seconds = secondsSince(iso, null, now);
  if (seconds === null) {
    return '';
  }
  if (seconds < 5) {
    return 'just now';
  }
  if (seconds < 60) {
    return `${Math.floor(seconds)} s ago`;
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)} min ago`;
  }
  if (seconds < 86400) {
    return `${Math.floor(seconds / 3600)} h ago`;
  }
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A short, readable number: 0.9630, 1.2e-4, 25. */
export function formatNumber(value: number): string {
  if (Number.isInteger(value)) {
    return String(value);
  }
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e6)
    ? value.toExponential(2)
    : value.toPrecision(4);
}

/** A metric or parameter value, short: 4 significant digits for fractions. */
export function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : value.toPrecision(4);
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** JSON indented, with lists of numbers or strings kept on one line (tensors' data). */
export function compactJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /\[\s+([^[\]{}]*?)\s+\]/g,
    (_, items: string) => `[${items.split(/,\s+/).join(', ')}]`
  );
}

export function shortTime(iso: string | null): string {
  if (!iso) {
    return '';
  }
  return new Date(iso).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
}

/**
 * A step error as the exception says it: without the server's log path (the log is
 * one click away) or the "failed in cell N, line L" the engine puts first (the
 * failure line says it from `failed_at`).
 */
export function plainError(error: string | null): string {
  return (error ?? '')
    .replace(/\s*\(log: [^)]*\)\s*$/, '')
    .replace(/^failed in cell \d+(, line \d+)?: /, '')
    .trim();
}

/** `summarize failed in cell 13, line 3: ZeroDivisionError: division by zero`. */
export function failureLine(step: string, runStep: IRunStep): string {
  const where = runStep.failed_at
    ? ` in ${cellLabel(runStep.failed_at.cell)}` +
      (runStep.failed_at.line ? `, line ${runStep.failed_at.line}` : '')
    : '';
  const error = plainError(runStep.error);
  return `${step} failed${where}${error ? `: ${error}` : ''}`;
}

/** State as words, for the text next to (or instead of) a coloured dot. */
export function stateText(state: string | undefined): string {
  return !state || state === 'none' ? 'not run' : state;
}

/**
 * A piece of a step log: the step's own output (`text`), kubelab's notes about the
 * run (`kubelab`), or kubelab-internal traceback frames, folded (`frames`).
 */
export interface ILogBlock {
  kind: 'text' | 'kubelab' | 'frames';
  lines: string[];
}

const FRAME = /^ {2}File "([^"]+)", line \d+/;

/** Path of a Python file without the server's folders (`sklearn/base.py`). */
export function shortPath(path: string): string {
  const packages = path.match(/[/\\](?:site|dist)-packages[/\\](.+)$/);
  if (packages) {
    return packages[1];
  }
  const kubelab = path.match(/[/\\](kubelab[/\\].+)$/);
  if (kubelab) {
    return kubelab[1];
  }
  const python = path.match(/[/\\]lib[/\\]python3[^/\\]*[/\\](.+)$/);
  return python ? python[1] : path.replace(/^.*[/\\]/, '');
}

/** A frame of kubelab's own machinery, which the user did not write. */
function isInternal(file: string): boolean {
  return (
    /[/\\]kubelab[/\\](pipelines|client|server)[/\\]/.test(file) ||
    file === 'ephemeral_component.py'
  );
}

/**
 * The log with each run of kubelab-internal traceback frames folded into one block,
 * so a traceback starts at the user's frames, and with server paths shortened.
 */
export function foldLog(text: string): ILogBlock[] {
  const blocks: ILogBlock[] = [];
  const push = (kind: ILogBlock['kind'], line: string) => {
    const last = blocks[blocks.length - 1];
    if (last && last.kind === kind) {
      last.lines.push(line);
    } else {
      blocks.push({ kind, lines: [line] });
    }
  };
  let internal = false;
  for (const line of text.split('\n')) {
    const frame = line.match(FRAME);
    if (frame) {
      internal = isInternal(frame[1]);
      push(
        internal ? 'frames' : 'text',
        line.replace(frame[1], shortPath(frame[1]))
      );
    } else if (internal && /^ {4}/.test(line)) {
      push('frames', line); // the source and caret lines of a folded frame
    } else {
      internal = false;
      push(line.startsWith('kubelab: ') ? 'kubelab' : 'text', line);
    }
  }
  return blocks;
}

/** Colour slots for steps, so a step has the same colour on its cells and in the graph. */
export const STEP_COLORS = 8;

export function stepColor(index: number): number {
  return ((index % STEP_COLORS) + STEP_COLORS) % STEP_COLORS;
}
