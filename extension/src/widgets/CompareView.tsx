import * as React from 'react';

import { MainAreaWidget } from '@jupyterlab/apputils';
import {
  ReactWidget,
  refreshIcon,
  tableRowsIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';

import { KubelabClient } from '../api';
import {
  compareRuns,
  ICompareArtifact,
  ICompareRow,
  IComparison
} from '../lineage';
import {
  formatDuration,
  formatNumber,
  shortTime,
  stateText,
  stepColor
} from '../format';
import { IChartSeries, LineChart } from './LineChart';
import { useRequest } from './useRequest';

export interface ICompareOptions {
  client: KubelabClient;
  /** Run ids (or `JOB/STEP` for tuning trials), in the order of the columns. */
  refs: string[];
  /** How the sidebar names a run (`#7 · n_estimators=50`), when it knows it. */
  label: (ref: string) => string | null;
}

/** The hex of a digest, short enough for a table cell (the full one on hover). */
export function shortDigest(digest: string | null | undefined): string {
  if (!digest) {
    return '—';
  }
  return digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);
}

function shown(value: unknown, missing = false): string {
  if (missing || value === null || value === undefined) {
    return '—';
  }
  return typeof value === 'number' ? formatNumber(value) : String(value);
}

/** "changed" next to a row's name; the row is marked for styling and tests too. */
function ChangedMark({ changed }: { changed: boolean }): JSX.Element | null {
  return changed ? (
    <span
      className="jp-kubelab-changed-mark"
      title="Differs between the compared runs"
    >
      changed
    </span>
  ) : null;
}

interface ITableRow {
  key: string;
  name: React.ReactNode;
  cells: React.ReactNode[];
  changed: boolean;
  /** Per cell: differs from the first run's (highlighted). */
  differs?: boolean[];
  testid?: string;
}

/** A table with a column per compared run, rows marked where the runs differ. */
function RunsTable(props: {
  caption: string;
  names: string[];
  rows: ITableRow[];
  testid: string;
}): JSX.Element {
  return (
    <div className="jp-kubelab-compare-scroll">
      <table className="jp-kubelab-compare-table" data-testid={props.testid}>
        <caption className="jp-kubelab-sr-only">{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col" />
            {props.names.map((name, i) => (
              <th
                key={i}
                scope="col"
                className={`jp-kubelab-color-${stepColor(i)}`}
              >
                <span className="jp-kubelab-chart-swatch" aria-hidden="true" />
                {name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map(row => (
            <tr
              key={row.key}
              className={row.changed ? 'jp-mod-changed' : ''}
              data-changed={row.changed}
              data-testid={row.testid}
            >
              <th scope="row">
                {row.name} <ChangedMark changed={row.changed} />
              </th>
              {row.cells.map((cell, i) => (
                <td
                  key={i}
                  className={row.differs?.[i] ? 'jp-kubelab-differs' : ''}
                >
                  {cell}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function valueRows(rows: ICompareRow[], kind: string): ITableRow[] {
  return rows.map(row => ({
    key: row.name,
    name: row.name,
    changed: row.changed,
    testid: `kubelab-compare-${kind}-${row.name}`,
    differs: row.values.map(
      (v, i) =>
        i > 0 &&
        (JSON.stringify(v) !== JSON.stringify(row.values[0]) ||
          row.missing[i] !== row.missing[0])
    ),
    cells: row.values.map((v, i) => shown(v, row.missing[i]))
  }));
}

function artifactRows(
  artifacts: ICompareArtifact[],
  stepName: (task: string) => string,
  kind: string
): ITableRow[] {
  return artifacts.map(a => ({
    key: `${a.step}/${a.name}`,
    name: (
      <>
        {stepName(a.step)}: <code>{a.name}</code>
        {a.external && (
          <span
            className="jp-kubelab-chip"
            title="Data from outside the run: imported, read from a file, or a pipeline input"
          >
            data
          </span>
        )}
      </>
    ),
    changed: a.changed,
    testid: `kubelab-compare-${kind}-${stepName(a.step)}-${a.name}`,
    differs: a.digests.map((d, i) => i > 0 && d !== a.digests[0]),
    cells: a.digests.map(d => (
      <code title={d ?? 'not recorded'}>{shortDigest(d)}</code>
    ))
  }));
}

/** A unified diff with added and removed lines marked (not by colour alone). */
function CodeDiff({ diff }: { diff: string }): JSX.Element {
  return (
    <pre className="jp-kubelab-diff" data-testid="kubelab-compare-diff">
      {diff.split('\n').map((line, i) => {
        const kind = line.startsWith('@@')
          ? 'hunk'
          : line.startsWith('+') && !line.startsWith('+++')
            ? 'added'
            : line.startsWith('-') && !line.startsWith('---')
              ? 'removed'
              : 'same';
        return (
          <span key={i} className={`jp-kubelab-diff-${kind}`}>
            {line}
            {'\n'}
          </span>
        );
      })}
    </pre>
  );
}

function charts(comparison: IComparison, names: string[]): JSX.Element[] {
  if (comparison.series.length > 0) {
    // Per step/epoch: training jobs' and trials' curves, a line per run.
    return comparison.series.map(series => {
      const lines: IChartSeries[] = series.runs
        .map((points, i) => ({
          name: names[i],
          color: stepColor(i),
          points: points.map((p, j) => ({ x: p.step ?? j, y: p.value }))
        }))
        .filter(line => line.points.length > 0);
      const title = series.task
        ? `${series.metric} (${series.task})`
        : series.metric;
      return (
        <LineChart
          key={`${series.task}/${series.metric}`}
          testid="kubelab-chart"
          title={title}
          xLabel="step"
          series={lines}
        />
      );
    });
  }
  // Final values only (a pipeline's metrics): each metric across the runs.
  // Runs by number on the axis ("#7"); the legend and tables give the full names.
  const xNames = new Map(names.map((name, i) => [i + 1, name.split(' ')[0]]));
  return comparison.metrics
    .filter(row => row.values.some(v => typeof v === 'number'))
    .map(row => (
      <LineChart
        key={row.name}
        testid="kubelab-chart"
        title={row.name}
        xLabel="run"
        xNames={xNames}
        series={[
          {
            name: row.name,
            points: row.values.flatMap((v, i) =>
              typeof v === 'number' ? [{ x: i + 1, y: v }] : []
            )
          }
        ]}
      />
    ));
}

/** A part of the comparison: its table of rows (one column per run), then more. */
function Section(props: {
  title: string;
  testid: string;
  names: string[];
  rows: ITableRow[];
  /** Said when there are no rows; without it, an empty section is left out. */
  empty?: string;
  children?: React.ReactNode;
}): JSX.Element | null {
  if (props.rows.length === 0 && !props.empty) {
    return null;
  }
  return (
    <section className="jp-kubelab-compare-section" data-testid={props.testid}>
      <h3>{props.title}</h3>
      {props.rows.length ? (
        <RunsTable
          caption={props.title}
          names={props.names}
          rows={props.rows}
          testid={`${props.testid}-table`}
        />
      ) : (
        <p className="jp-kubelab-muted">{props.empty}</p>
      )}
      {props.children}
    </section>
  );
}

/** The comparison itself, KFP's "Compare runs" laid out for JupyterLab. */
function Comparison(props: {
  comparison: IComparison;
  names: string[];
}): JSX.Element {
  const { comparison, names } = props;
  const { runs, steps } = comparison;
  const stepNames = new Map(steps.map(s => [s.name, s.step ?? s.display_name]));
  const stepName = (task: string) => stepNames.get(task) ?? task;
  const environment = comparison.environment;
  const overview: ITableRow[] = [
    {
      key: 'state',
      name: 'State',
      changed: false,
      cells: runs.map(r => stateText(r.state))
    },
    {
      key: 'started',
      name: 'Started',
      changed: false,
      cells: runs.map(r => shortTime(r.created_at))
    },
    {
      key: 'experiment',
      name: 'Experiment',
      changed: false,
      cells: runs.map(r => r.experiment?.split('/').pop() ?? '—')
    },
    {
      key: 'source',
      name: 'Source',
      changed: comparison.source_changed,
      differs: runs.map(
        (r, i) => i > 0 && r.source.digest !== runs[0].source.digest
      ),
      cells: runs.map(r => (
        <>
          {r.source.relative_path ?? r.source.path?.split('/').pop() ?? '—'}{' '}
          <code title={r.source.digest ?? ''}>
            {shortDigest(r.source.digest)}
          </code>
          {r.source.git && (
            <span className="jp-kubelab-muted">
              {' '}
              git {r.source.git.commit.slice(0, 8)}
              {r.source.git.dirty ? ' (modified)' : ''}
            </span>
          )}
        </>
      ))
    },
    {
      key: 'environment',
      name: 'Environment',
      changed: environment.changed,
      differs: environment.digests.map(
        (d, i) => i > 0 && d !== environment.digests[0]
      ),
      cells: environment.digests.map((d, i) => (
        <>
          Python {environment.python[i] ?? '?'}{' '}
          <code title={d ?? ''}>{shortDigest(d)}</code>
        </>
      ))
    }
  ];
  const stepRows: ITableRow[] = steps.map(s => {
    const what = [
      s.code_changed && 'code',
      s.parameters_changed && 'parameters',
      s.inputs_changed && 'inputs',
      s.image_changed && 'image'
    ].filter(Boolean);
    return {
      key: s.name,
      name: (
        <>
          {s.step ?? s.display_name}
          {what.length > 0 && (
            <span className="jp-kubelab-muted"> ({what.join(', ')})</span>
          )}
        </>
      ),
      changed: what.length > 0,
      testid: `kubelab-compare-step-${s.step ?? s.display_name}`,
      cells: s.states.map((state, i) => (
        <>
          {stateText(state ?? undefined)}
          {s.cached[i] ? (
            <span className="jp-kubelab-chip" title="Reused from the cache">
              cached
            </span>
          ) : (
            <span className="jp-kubelab-muted">
              {' '}
              {formatDuration(s.durations[i])}
            </span>
          )}
        </>
      ))
    };
  });
  const changedCode = steps.filter(s => s.code_changed);
  const chartList = charts(comparison, names);
  return (
    <div className="jp-kubelab-compare-body">
      <Section
        title="Runs"
        testid="kubelab-compare-runs"
        names={names}
        rows={overview}
      />
      <Section
        title="Parameters"
        testid="kubelab-compare-parameters"
        names={names}
        rows={valueRows(comparison.parameters, 'parameter')}
        empty="No parameters."
      />
      <Section
        title="Metrics"
        testid="kubelab-compare-metrics"
        names={names}
        rows={valueRows(comparison.metrics, 'metric')}
        empty="No metrics reported."
      >
        {chartList.length > 0 && (
          <div className="jp-kubelab-charts">{chartList}</div>
        )}
      </Section>
      <Section
        title="Steps: state, cache and what changed"
        testid="kubelab-compare-steps"
        names={names}
        rows={stepRows}
      >
        {changedCode.map(s =>
          s.diffs.map((diff, i) =>
            diff ? (
              <details
                key={`${s.name}/${i}`}
                className="jp-kubelab-compare-diff"
                open={changedCode.length === 1}
              >
                <summary>
                  Code of {s.step ?? s.display_name}: {names[0]} → {names[i]}
                </summary>
                <CodeDiff diff={diff} />
              </details>
            ) : null
          )
        )}
      </Section>
      <Section
        title="Input data"
        testid="kubelab-compare-inputs"
        names={names}
        rows={artifactRows(comparison.inputs, stepName, 'input')}
      />
      <Section
        title="Outputs"
        testid="kubelab-compare-outputs"
        names={names}
        rows={artifactRows(comparison.outputs, stepName, 'output')}
      />
    </div>
  );
}

function CompareRuns(props: ICompareOptions): JSX.Element {
  const { client, refs, label } = props;
  const {
    value: comparison,
    error,
    reload
  } = useRequest(() => compareRuns(client, refs), refs.join(','));
  const names = (comparison?.runs ?? []).map(
    r =>
      label(r.ref) ?? (r.step ? r.step : `${r.name} ${shortTime(r.created_at)}`)
  );
  return (
    <div className="jp-kubelab-compare" data-testid="kubelab-compare">
      <div
        className="jp-kubelab-view-toolbar"
        role="toolbar"
        aria-label="Compare runs"
      >
        <h2 className="jp-kubelab-compare-title">
          Compare {refs.length}{' '}
          {refs.some(r => r.includes('/')) ? 'trials' : 'runs'}
        </h2>
        <ToolbarButtonComponent
          icon={refreshIcon}
          tooltip="Compare again (runs that were still going have moved on)"
          dataset={{ testid: 'kubelab-compare-refresh' }}
          onClick={reload}
        />
      </div>
      {error && (
        <div className="jp-kubelab-error" role="alert">
          {error}
        </div>
      )}
      {comparison ? (
        <Comparison comparison={comparison} names={names} />
      ) : (
        !error && (
          <p className="jp-kubelab-muted jp-kubelab-compare-body">Comparing…</p>
        )
      )}
    </div>
  );
}

let opened = 0;

/** "Compare runs" in the main area: one tab per comparison. */
export class CompareView extends MainAreaWidget<ReactWidget> {
  constructor(options: ICompareOptions) {
    super({ content: ReactWidget.create(<CompareRuns {...options} />) });
    this.id = `kubelab-compare-${++opened}`;
    this.addClass('jp-kubelab-compare-view');
    this.title.icon = tableRowsIcon;
    this.title.closable = true;
    const names = options.refs.map(r => options.label(r) ?? r);
    this.title.label = `Compare ${names.map(n => n.split(' ')[0]).join(', ')}`;
    this.title.caption = `Compare runs: ${names.join(', ')}`;
    this.toolbar.hide();
  }
}
