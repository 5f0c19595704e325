import * as React from 'react';

import { formatValue, stepColor } from '../format';

export interface IChartPoint {
  x: number;
  y: number;
  /** Shown on hover (the trial's name, the node). */
  label?: string;
  /** A point to call out (the best trial). */
  highlight?: boolean;
}

export interface IChartSeries {
  name: string;
  points: IChartPoint[];
  /** Its colour slot (default: its place among the series), to match other views. */
  color?: number;
  /** `line`: points joined; `points`: dots only; `step`: a staircase (best so far). */
  kind?: 'line' | 'points' | 'step';
}

export interface ILineChartProps {
  title: string;
  series: IChartSeries[];
  xLabel: string;
  yLabel?: string;
  /** Names for x values, on the axis and in tooltips (e.g. runs: "#7"). */
  xNames?: Map<number, string>;
  testid?: string;
}

const WIDTH = 520;
const HEIGHT = 220;
const MARGIN = { top: 12, right: 14, bottom: 34, left: 58 };

/** About `count` round tick values covering [min, max]. */
export function ticks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) {
    return [min];
  }
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step =
    [1, 2, 2.5, 5, 10].map(m => m * magnitude).find(s => s >= raw) ??
    10 * magnitude;
  const out: number[] = [];
  for (
    let t = Math.ceil(min / step) * step;
    t <= max + step * 1e-9;
    t += step
  ) {
    out.push(Math.abs(t) < step * 1e-9 ? 0 : Number(t.toPrecision(12)));
  }
  return out;
}

/** A tick's value without float noise or padding zeros: 0.5, 1.5, 0.002. */
function tickLabel(value: number): string {
  return String(Number(value.toPrecision(6)));
}

function extent(values: number[]): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.1 || 1;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

/** A value extent with room around it, so no point sits on an axis. */
function padded(values: number[]): [number, number] {
  const [lo, hi] = extent(values);
  const pad = (hi - lo) * 0.06;
  return [lo - pad, hi + pad];
}

/**
 * A line chart in SVG, drawn with the theme's colours (axes, grid and labels from
 * JupyterLab's CSS variables; series in the step colours), so it reads in light and
 * dark themes. Every point has its value as a tooltip; the figure has a text summary
 * for screen readers.
 */
export function LineChart({
  title,
  series,
  xLabel,
  yLabel,
  xNames,
  testid
}: ILineChartProps): JSX.Element {
  const all = series.flatMap(s => s.points);
  if (all.length === 0) {
    return (
      <figure className="jp-kubelab-chart" data-testid={testid}>
        <figcaption>{title}</figcaption>
        <p className="jp-kubelab-muted">No values reported yet.</p>
      </figure>
    );
  }
  const [x0, x1] = extent(all.map(p => p.x));
  const [y0, y1] = padded(all.map(p => p.y));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * plotH;
  // Steps and trial numbers are whole: no ticks between them.
  const whole = all.every(p => Number.isInteger(p.x));
  const xTicks = ticks(x0, x1, 6).filter(t => !whole || Number.isInteger(t));
  const yTicks = ticks(y0, y1, 5);
  const xName = (x: number) => xNames?.get(x) ?? tickLabel(x);
  const colorOf = (s: IChartSeries, i: number) => s.color ?? stepColor(i);
  const path = (s: IChartSeries) =>
    s.points
      .map((p, i) => {
        const point = `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`;
        if (i === 0) {
          return `M${point}`;
        }
        return s.kind === 'step'
          ? `H${sx(p.x).toFixed(1)}V${sy(p.y).toFixed(1)}`
          : `L${point}`;
      })
      .join('');
  const last = (s: IChartSeries) => s.points[s.points.length - 1];
  const summary = series
    .filter(s => s.points.length)
    .map(
      s =>
        `${s.name}: ${s.points.length} values, last ${formatValue(last(s).y)}`
    )
    .join('; ');
  return (
    <figure className="jp-kubelab-chart" data-testid={testid}>
      <figcaption>{title}</figcaption>
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        className="jp-kubelab-chart-svg"
        role="img"
        aria-label={`${title}: ${summary}`}
      >
        <g className="jp-kubelab-chart-grid">
          {yTicks.map(t => (
            <line
              key={t}
              x1={MARGIN.left}
              x2={WIDTH - MARGIN.right}
              y1={sy(t)}
              y2={sy(t)}
            />
          ))}
        </g>
        <g className="jp-kubelab-chart-axis">
          <line
            x1={MARGIN.left}
            x2={MARGIN.left}
            y1={MARGIN.top}
            y2={HEIGHT - MARGIN.bottom}
          />
          <line
            x1={MARGIN.left}
            x2={WIDTH - MARGIN.right}
            y1={HEIGHT - MARGIN.bottom}
            y2={HEIGHT - MARGIN.bottom}
          />
          {yTicks.map(t => (
            <text
              key={t}
              x={MARGIN.left - 6}
              y={sy(t)}
              dy="0.32em"
              textAnchor="end"
            >
              {tickLabel(t)}
            </text>
          ))}
          {xTicks.map(t => (
            <text
              key={t}
              x={sx(t)}
              y={HEIGHT - MARGIN.bottom + 14}
              textAnchor="middle"
            >
              {xName(t)}
            </text>
          ))}
          <text
            x={MARGIN.left + plotW / 2}
            y={HEIGHT - 4}
            textAnchor="middle"
            className="jp-kubelab-chart-label"
          >
            {xLabel}
          </text>
          {yLabel && (
            <text
              transform={`translate(12 ${MARGIN.top + plotH / 2}) rotate(-90)`}
              textAnchor="middle"
              className="jp-kubelab-chart-label"
            >
              {yLabel}
            </text>
          )}
        </g>
        {series.map((s, i) => (
          <g
            key={s.name}
            className={`jp-kubelab-chart-series jp-kubelab-color-${colorOf(s, i)} jp-kubelab-chart-${s.kind ?? 'line'}`}
            data-testid="kubelab-chart-series"
            data-series={s.name}
          >
            {s.kind !== 'points' && s.points.length > 1 && (
              <path d={path(s)} data-testid="kubelab-chart-line" />
            )}
            {s.kind !== 'step' &&
              s.points.map((p, j) => (
                <circle
                  key={j}
                  cx={sx(p.x)}
                  cy={sy(p.y)}
                  r={p.highlight ? 5.5 : 3}
                  className={p.highlight ? 'jp-mod-highlight' : undefined}
                >
                  <title>
                    {`${p.label ? `${p.label}: ` : ''}${s.name} ${formatValue(p.y)} at ${xLabel} ${xNames?.get(p.x) ?? formatValue(p.x)}`}
                  </title>
                </circle>
              ))}
          </g>
        ))}
      </svg>
      {series.length > 1 && (
        <ul className="jp-kubelab-chart-legend">
          {series.map((s, i) => (
            <li
              key={s.name}
              className={`jp-kubelab-color-${colorOf(s, i)} jp-kubelab-chart-${s.kind ?? 'line'}`}
            >
              <span className="jp-kubelab-chart-key" aria-hidden="true" />
              {s.name}
            </li>
          ))}
        </ul>
      )}
    </figure>
  );
}
