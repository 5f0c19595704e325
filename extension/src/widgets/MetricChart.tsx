import * as React from 'react';

export interface IChartPoint {
  x: number;
  y: number;
}

/** One line of the chart: a compared run (or trial) with its colour slot. */
export interface IChartLine {
  label: string;
  color: number;
  points: IChartPoint[];
}

export interface IMetricChartProps {
  title: string;
  /** What x counts: "step", "epoch", "run". */
  xLabel: string;
  lines: IChartLine[];
  /** Labels for x values (e.g. the runs' names when x counts runs). */
  xNames?: Map<number, string>;
}

// Sizes in CSS pixels; tick labels are 11 px (set in CSS), never scaled down.
const W = 360;
const H = 190;
const LEFT = 52;
const RIGHT = 14;
const TOP = 10;
const BOTTOM = 34;

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

function extent(values: number[]): [number, number] {
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (low === high) {
    const pad = Math.abs(low) * 0.05 || 1;
    low -= pad;
    high += pad;
  }
  return [low, high];
}

/**
 * A metric as an SVG line chart: one line per run, points with their values on hover,
 * a legend that names each line. Colours are the step colour slots, so they read in
 * both themes.
 */
export function MetricChart(props: IMetricChartProps): JSX.Element {
  const { lines, title, xLabel, xNames } = props;
  const all = lines.flatMap(l => l.points);
  const [x0, x1] = extent(all.map(p => p.x));
  const [y0, y1] = extent(all.map(p => p.y));
  const sx = (x: number) => LEFT + ((x - x0) / (x1 - x0)) * (W - LEFT - RIGHT);
  const sy = (y: number) =>
    TOP + (1 - (y - y0) / (y1 - y0)) * (H - TOP - BOTTOM);
  const yTicks = [y0, (y0 + y1) / 2, y1];
  const xs = [...new Set(all.map(p => p.x))].sort((a, b) => a - b);
  const xTicks = xs.length <= 8 ? xs : [xs[0], xs[xs.length - 1]];
  const summary = lines
    .map(l => {
      const last = l.points[l.points.length - 1];
      return last ? `${l.label}: ${formatNumber(last.y)}` : l.label;
    })
    .join('; ');
  return (
    <figure className="jp-kubelab-chart" data-testid="kubelab-chart">
      <figcaption className="jp-kubelab-chart-title">{title}</figcaption>
      <svg
        width={W}
        height={H}
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${title} by ${xLabel}. ${summary}`}
      >
        {yTicks.map(y => (
          <g key={`y${y}`}>
            <line
              className="jp-kubelab-chart-grid"
              x1={LEFT}
              x2={W - RIGHT}
              y1={sy(y)}
              y2={sy(y)}
            />
            <text
              className="jp-kubelab-chart-tick"
              x={LEFT - 6}
              y={sy(y)}
              textAnchor="end"
              dominantBaseline="central"
            >
              {formatNumber(y)}
            </text>
          </g>
        ))}
        <line
          className="jp-kubelab-chart-axis"
          x1={LEFT}
          x2={W - RIGHT}
          y1={H - BOTTOM}
          y2={H - BOTTOM}
        />
        {xTicks.map(x => (
          <text
            key={`x${x}`}
            className="jp-kubelab-chart-tick"
            x={sx(x)}
            y={H - BOTTOM + 14}
            textAnchor="middle"
          >
            {xNames?.get(x) ?? formatNumber(x)}
          </text>
        ))}
        <text
          className="jp-kubelab-chart-tick"
          x={(LEFT + W - RIGHT) / 2}
          y={H - 4}
          textAnchor="middle"
        >
          {xLabel}
        </text>
        {lines.map(line => (
          <g
            key={line.label}
            className={`jp-kubelab-chart-series jp-kubelab-color-${line.color}`}
          >
            <polyline
              className="jp-kubelab-chart-line"
              points={line.points.map(p => `${sx(p.x)},${sy(p.y)}`).join(' ')}
            />
            {line.points.map(p => (
              <circle
                key={p.x}
                className="jp-kubelab-chart-point"
                cx={sx(p.x)}
                cy={sy(p.y)}
                r={3.5}
              >
                <title>{`${line.label}, ${xLabel} ${xNames?.get(p.x) ?? p.x}: ${formatNumber(p.y)}`}</title>
              </circle>
            ))}
          </g>
        ))}
      </svg>
      <ul className="jp-kubelab-chart-legend">
        {lines.map(line => (
          <li key={line.label} className={`jp-kubelab-color-${line.color}`}>
            <span className="jp-kubelab-chart-swatch" aria-hidden="true" />
            {line.label}
          </li>
        ))}
      </ul>
    </figure>
  );
}
