import * as React from 'react';

import { IJob, KubelabClient, MetricSeries } from '../api';
import { formatDuration, formatValue, stateText } from '../format';
import { IChartSeries, LineChart } from './LineChart';
import { StateDot } from './StateDot';
import { JobStepLog, LogButton } from './StepLogView';

export interface IJobBodyProps {
  client: KubelabClient;
  /** The job as last read; a new object each time it changed. */
  job: IJob;
  /** Open the lineage of the artifact at `uri` (where a served model came from). */
  openLineage?: (uri: string, name: string) => void;
}

/** The metric series of a job, read again each time the job changes. */
export function useMetrics(client: KubelabClient, job: IJob): MetricSeries {
  const [series, setSeries] = React.useState<MetricSeries>({});
  React.useEffect(() => {
    let live = true;
    client
      .jobMetrics(job.id)
      .then(read => live && setSeries(read))
      .catch(() => undefined); // the next change reads them again
    return () => {
      live = false;
    };
  }, [client, job]);
  return series;
}

/** One chart per reported metric, one line per node that reported it. */
function metricCharts(series: MetricSeries): [string, IChartSeries[]][] {
  const byMetric = new Map<string, IChartSeries[]>();
  for (const [node, metrics] of Object.entries(series)) {
    for (const [metric, points] of Object.entries(metrics)) {
      const lines = byMetric.get(metric) ?? [];
      lines.push({
        name: node,
        points: points.map((p, i) => ({ x: p.step ?? i, y: p.value }))
      });
      byMetric.set(metric, lines);
    }
  }
  return [...byMetric.entries()];
}

/** "train_ddp.ipynb · 2 nodes × 1 process · 0 GPUs · epochs=3". */
function describeSpec(job: IJob): string {
  const spec = job.spec ?? {};
  const source = spec.source ?? {};
  const nodes = Number(spec.num_nodes ?? job.steps.length);
  const procs = Number(spec.nproc_per_node ?? 1);
  const gpus = Number(spec.resources_per_node?.gpu ?? 0);
  const parts = [
    source.path ?? (source.function ? `${source.function}()` : ''),
    `${nodes} node${nodes === 1 ? '' : 's'} × ${procs} process${procs === 1 ? '' : 'es'}`,
    gpus ? `${gpus} GPU${gpus === 1 ? '' : 's'} per node` : 'CPU'
  ];
  const params = Object.entries(spec.parameters ?? {}).map(
    ([k, v]) => `${k}=${formatValue(v)}`
  );
  return [...parts.filter(Boolean), ...params].join(' · ');
}

/**
 * A training job: what it runs, each node's state and device, a chart of each
 * reported metric over the steps, and a node's log, followed while it runs.
 */
export function TrainingJobView({ client, job }: IJobBodyProps): JSX.Element {
  const series = useMetrics(client, job);
  const [selected, setSelected] = React.useState<string | null>(null);
  const node = selected ?? job.steps[0]?.name ?? null;
  const charts = metricCharts(series);
  return (
    <div className="jp-kubelab-job-body" data-testid="kubelab-training-view">
      <p className="jp-kubelab-job-spec">{describeSpec(job)}</p>
      <h3>Nodes</h3>
      {job.steps.length === 0 ? (
        <p className="jp-kubelab-muted">No node has started yet.</p>
      ) : (
        <table className="jp-kubelab-table" data-testid="kubelab-nodes">
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">State</th>
              <th scope="col">Device</th>
              <th scope="col">Ranks</th>
              <th scope="col">Duration</th>
              <th scope="col">
                <span className="jp-kubelab-sr-only">Log</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {job.steps.map(step => (
              <tr
                key={step.name}
                className={step.name === node ? 'jp-mod-selected' : undefined}
                data-testid={`kubelab-node-${step.name}`}
                data-state={step.state}
              >
                <th scope="row">{step.name}</th>
                <td>
                  <StateDot state={step.state} /> {stateText(step.state)}
                </td>
                <td>
                  {step.device ?? ''}
                  {step.gpus?.length ? ` ${step.gpus.join(',')}` : ''}
                </td>
                <td>{step.ranks?.join(', ') ?? ''}</td>
                <td>{formatDuration(step.duration_s)}</td>
                <td>
                  <LogButton
                    shown={step.name === node}
                    onShow={() => setSelected(step.name)}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Metrics</h3>
      {charts.length === 0 ? (
        <p className="jp-kubelab-muted" data-testid="kubelab-no-metrics">
          No metrics reported yet: call{' '}
          <code>kubelab.workloads.report(step=epoch, loss=…)</code> or print{' '}
          <code>loss=0.25</code> lines.
        </p>
      ) : (
        <div className="jp-kubelab-charts">
          {charts.map(([metric, lines]) => (
            <LineChart
              key={metric}
              title={metric}
              series={lines}
              xLabel="step"
              yLabel={metric}
              testid={`kubelab-chart-${metric}`}
            />
          ))}
        </div>
      )}
      {node && (
        <JobStepLog
          client={client}
          job={job}
          step={node}
          label={`${node} of ${job.spec?.name ?? job.id}`}
        />
      )}
    </div>
  );
}
