import * as React from 'react';

import { ITrial, ITuningView } from '../api';
import { formatDuration, formatValue, stateText } from '../format';
import { IChartSeries, LineChart } from './LineChart';
import { StateDot } from './StateDot';
import { JobStepLog, LogButton } from './StepLogView';
import { IJobBodyProps } from './TrainingJobView';

type SortKey = { column: string; ascending: boolean };

/** The value of `column` in a trial, for sorting (numbers before text). */
function cell(trial: ITrial, column: string): number | string {
  if (column === 'trial') {
    return trial.name;
  }
  if (column === 'objective') {
    return trial.objective ?? Number.NaN;
  }
  if (column === 'state') {
    return trial.condition;
  }
  if (column === 'duration') {
    return trial.duration_s ?? Number.NaN;
  }
  const value = trial.parameters[column];
  return typeof value === 'number' ? value : String(value ?? '');
}

function compare(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') {
    // Trials without a value (running, failed) go last either way.
    return Number.isNaN(a) ? 1 : Number.isNaN(b) ? -1 : a - b;
  }
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

/** The objective per trial (dots, the best one called out) and the best so far. */
function chartSeries(view: ITuningView): IChartSeries[] {
  const metric = view.objective.metric ?? 'objective';
  return [
    {
      name: metric,
      kind: 'points',
      points: view.chart
        .filter(c => c.objective !== null)
        .map(c => ({
          x: c.index,
          y: c.objective as number,
          label: c.trial,
          highlight: c.trial === view.best?.trial
        }))
    },
    {
      name: 'best so far',
      kind: 'step',
      points: view.chart
        .filter(c => c.best_so_far !== null)
        .map(c => ({ x: c.index, y: c.best_so_far as number }))
    }
  ];
}

/**
 * A tuning job: the objective and the best trial, a chart of the objective per
 * trial with the best-so-far line, the trials (sortable by any column, the best
 * highlighted) and a trial's log.
 */
export function TuningJobView({ client, job }: IJobBodyProps): JSX.Element {
  const view = job.tuning;
  const [sort, setSort] = React.useState<SortKey>({
    column: 'trial',
    ascending: true
  });
  const [selected, setSelected] = React.useState<string | null>(null);
  if (!view) {
    return <p className="jp-kubelab-muted">No trials yet.</p>;
  }
  const metric = view.objective.metric ?? 'objective';
  const parameters = view.parameters.map(p => p.name);
  const columns: [string, string][] = [
    ['trial', 'Trial'],
    ...parameters.map((p): [string, string] => [p, p]),
    ['objective', metric],
    ['state', 'State'],
    ['duration', 'Duration']
  ];
  const trials = [...view.trials].sort((a, b) => {
    const order = compare(cell(a, sort.column), cell(b, sort.column));
    return sort.ascending ? order : -order;
  });
  const trial = selected ?? view.best?.trial ?? view.trials[0]?.name ?? null;
  const { counts, best } = view;
  return (
    <div className="jp-kubelab-job-body" data-testid="kubelab-tuning-view">
      <p className="jp-kubelab-job-spec">
        {view.objective.type ?? 'optimize'} {metric} · {view.algorithm.name}{' '}
        search · {counts.trials}
        {counts.max_trials ? ` of ${counts.max_trials}` : ''} trials
        {counts.parallel_trials ? `, ${counts.parallel_trials} at a time` : ''}
      </p>
      <p data-testid="kubelab-tuning-counts">
        {counts.succeeded + counts.early_stopped} succeeded
        {counts.running ? ` · ${counts.running} running` : ''}
        {counts.pending ? ` · ${counts.pending} waiting` : ''}
        {counts.failed ? ` · ${counts.failed} failed` : ''}
        {counts.killed ? ` · ${counts.killed} stopped` : ''}
      </p>
      {best && (
        <p className="jp-kubelab-tuning-best" data-testid="kubelab-tuning-best">
          Best: <strong>{formatValue(best.objective)}</strong> in {best.trial}{' '}
          <span className="jp-kubelab-muted">
            (
            {Object.entries(best.parameters)
              .map(([k, v]) => `${k}=${formatValue(v)}`)
              .join(', ')}
            )
          </span>
        </p>
      )}
      {view.message && job.state !== 'running' && (
        <p className="jp-kubelab-muted">{view.message}</p>
      )}
      <LineChart
        title={`${metric} per trial`}
        series={chartSeries(view)}
        xLabel="trial"
        yLabel={metric}
        testid="kubelab-tuning-chart"
      />
      <h3>Trials</h3>
      <table className="jp-kubelab-table" data-testid="kubelab-trials">
        <caption className="jp-kubelab-sr-only">
          Trials, sorted by {sort.column}; the best is marked
        </caption>
        <thead>
          <tr>
            {columns.map(([key, label]) => (
              <th
                key={key}
                scope="col"
                aria-sort={
                  sort.column === key
                    ? sort.ascending
                      ? 'ascending'
                      : 'descending'
                    : undefined
                }
              >
                <button
                  className="jp-kubelab-sort"
                  data-testid={`kubelab-sort-${key}`}
                  onClick={() =>
                    setSort(s => ({
                      column: key,
                      ascending: s.column === key ? !s.ascending : true
                    }))
                  }
                >
                  {label}
                  <span aria-hidden="true">
                    {sort.column === key ? (sort.ascending ? ' ▲' : ' ▼') : ''}
                  </span>
                </button>
              </th>
            ))}
            <th scope="col">
              <span className="jp-kubelab-sr-only">Log</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {trials.map(t => (
            <tr
              key={t.name}
              className={
                [
                  t.best ? 'jp-kubelab-best' : '',
                  t.name === trial ? 'jp-mod-selected' : ''
                ]
                  .join(' ')
                  .trim() || undefined
              }
              data-testid="kubelab-trial"
              data-trial={t.name}
              data-best={t.best}
            >
              <th scope="row">
                {t.name}
                {t.best && <span className="jp-kubelab-chip">best</span>}
              </th>
              {parameters.map(p => (
                <td key={p}>{formatValue(t.parameters[p])}</td>
              ))}
              <td data-testid="kubelab-trial-objective">
                {t.objective === null ? '' : formatValue(t.objective)}
              </td>
              <td title={t.error ?? undefined}>
                <StateDot state={t.state} />{' '}
                {t.condition === 'EarlyStopped'
                  ? 'stopped early'
                  : stateText(t.state)}
              </td>
              <td>{formatDuration(t.duration_s)}</td>
              <td>
                <LogButton
                  shown={t.name === trial}
                  onShow={() => setSelected(t.name)}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {trial && (
        <JobStepLog
          client={client}
          job={job}
          step={trial}
          label={`${trial} of ${job.spec?.name ?? job.id}`}
        />
      )}
    </div>
  );
}
