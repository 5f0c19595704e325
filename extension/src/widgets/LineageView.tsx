import * as React from 'react';

import { MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget, treeViewIcon } from '@jupyterlab/ui-components';

import { IEdge, KubelabClient } from '../api';
import {
  artifactLineage,
  ILineageArtifact,
  ILineageExecution,
  ILineageGraph,
  IRunFacts,
  LineageKey
} from '../lineage';
import { formatNumber, stateText } from '../format';
import { shortDigest } from './CompareView';
import { DagView, DagZoomButtons, IDagNode, IDagViewHandle } from './DagView';
import { useRequest } from './useRequest';

export interface ILineageOptions {
  client: KubelabClient;
  /** The artifact: a run step's output, `RUN/STEP/OUTPUT` (not `ref`: React's). */
  artifact: string;
  /** What `artifact` is: a step output's name (the default) or the artifact's URI. */
  by?: LineageKey;
  /** Its name, for the tab. */
  name: string;
  /** How the sidebar names a run (`#7 · n_estimators=50`), when it knows it. */
  label: (runId: string) => string | null;
}

type NodeKind = 'artifact' | 'execution' | 'source' | 'parameters';

interface ILineageNode extends IDagNode {
  kind: NodeKind;
  state: string;
  status: string;
  artifact?: ILineageArtifact;
  execution?: ILineageExecution;
  run?: string;
}

const COLORS: Record<NodeKind, number> = {
  execution: 0,
  parameters: 1,
  artifact: 2,
  source: 3
};

const EXECUTION_STATES: Record<string, string> = {
  COMPLETE: 'succeeded',
  CACHED: 'succeeded',
  FAILED: 'failed',
  RUNNING: 'running',
  CANCELED: 'cancelled'
};

function text(value: unknown): string {
  return typeof value === 'number'
    ? formatNumber(value)
    : typeof value === 'string'
      ? value
      : JSON.stringify(value);
}

function parameterList(parameters: Record<string, unknown>): string {
  return Object.entries(parameters)
    .map(([k, v]) => `${k}=${text(v)}`)
    .join(' · ');
}

/** What a value is, shortly: `RandomForestClassifier`, `DataFrame`, `Model`. */
function kindOf(artifact: ILineageArtifact): string {
  const valueType = artifact.properties.value_type;
  if (typeof valueType === 'string') {
    return valueType.split('.').pop() ?? valueType;
  }
  return artifact.type.replace(/^(system|kubelab)\./, '');
}

function sourceName(facts: IRunFacts | undefined): string {
  const source = facts?.source;
  return source?.relative_path ?? source?.path?.split('/').pop() ?? 'source';
}

/**
 * The graph of an artifact's lineage as the pipeline graph draws steps: each run's
 * source snapshot and parameters, the executions of its steps, and the artifacts
 * they read and wrote, ending in the one asked about.
 */
function nodesOf(
  graph: ILineageGraph,
  runName: (id: string) => string
): { nodes: ILineageNode[]; edges: IEdge[] } {
  const nodes: ILineageNode[] = [];
  const edges: IEdge[] = [];
  const runs = [...new Set(graph.executions.map(e => e.run))];
  for (const run of runs) {
    const facts = graph.runs[run];
    nodes.push({
      name: `source:${run}`,
      label: sourceName(facts),
      depends_on: [],
      kind: 'source',
      state: 'none',
      status: `${runName(run)} · snapshot ${shortDigest(facts?.source?.digest)}`,
      run
    });
    if (facts && Object.keys(facts.parameters).length > 0) {
      nodes.push({
        name: `parameters:${run}`,
        label: `parameters of ${runName(run).split(' ')[0]}`,
        depends_on: [],
        kind: 'parameters',
        state: 'none',
        status: parameterList(facts.parameters),
        run
      });
    }
  }
  for (const execution of graph.executions) {
    const name = `e${execution.id}`;
    const used = Object.keys(execution.properties.inputs ?? {});
    const reads = graph.edges.filter(
      e => e.type === 'INPUT' && e.execution === execution.id
    );
    const depends = [
      `source:${execution.run}`,
      ...reads.map(e => `a${e.artifact}`)
    ];
    edges.push({ from: `source:${execution.run}`, to: name, variables: [] });
    if (used.length > 0 && graph.runs[execution.run]) {
      depends.push(`parameters:${execution.run}`);
      edges.push({
        from: `parameters:${execution.run}`,
        to: name,
        variables: used
      });
    }
    for (const read of reads) {
      edges.push({
        from: `a${read.artifact}`,
        to: name,
        variables: [read.name]
      });
    }
    nodes.push({
      name,
      label: execution.properties.step ?? execution.name,
      depends_on: depends,
      kind: 'execution',
      state: EXECUTION_STATES[execution.state] ?? 'none',
      status: `${runName(execution.run)} · ${
        execution.state === 'CACHED'
          ? 'cached'
          : stateText(EXECUTION_STATES[execution.state])
      }`,
      execution,
      run: execution.run
    });
  }
  for (const artifact of graph.artifacts) {
    const name = `a${artifact.id}`;
    const producer =
      artifact.producer === null ? null : `e${artifact.producer}`;
    if (producer && nodes.some(n => n.name === producer)) {
      edges.push({ from: producer, to: name, variables: [artifact.name] });
    }
    nodes.push({
      name,
      label: artifact.name,
      depends_on: producer ? [producer] : [],
      kind: 'artifact',
      state: 'none',
      status: `${kindOf(artifact)} · ${shortDigest(artifact.digest)}`,
      artifact
    });
  }
  return { nodes, edges };
}

function Fact(props: {
  term: string;
  children: React.ReactNode;
  testid?: string;
}): JSX.Element {
  return (
    <>
      <dt>{props.term}</dt>
      <dd data-testid={props.testid}>{props.children}</dd>
    </>
  );
}

/** Where the artifact came from, in words: step, run, source, parameters, inputs. */
function Provenance(props: {
  graph: ILineageGraph;
  runName: (id: string) => string;
}): JSX.Element {
  const { graph, runName } = props;
  const artifact = graph.artifact;
  const producer = graph.executions.find(e => e.id === artifact.producer);
  const facts = producer ? graph.runs[producer.run] : undefined;
  const used = new Set(Object.keys(producer?.properties.inputs ?? {}));
  const inputs = producer
    ? graph.edges.filter(e => e.type === 'INPUT' && e.execution === producer.id)
    : [];
  const madeBy = (artifactId: number) => {
    const found = graph.artifacts.find(a => a.id === artifactId);
    const by = graph.executions.find(e => e.id === found?.producer);
    return by
      ? ` from ${by.properties.step ?? by.name} in ${runName(by.run)}`
      : '';
  };
  return (
    <div
      className="jp-kubelab-lineage-facts"
      data-testid="kubelab-lineage-facts"
    >
      <h3>
        {artifact.name}{' '}
        <span className="jp-kubelab-muted">({kindOf(artifact)})</span>
      </h3>
      <dl className="jp-kubelab-facts">
        <Fact term="Produced by" testid="kubelab-lineage-producer">
          {producer ? (
            <>
              step <strong>{producer.properties.step ?? producer.name}</strong>{' '}
              in run <strong>{runName(producer.run)}</strong>
              {producer.state === 'CACHED' ? ' (cached)' : ''}
            </>
          ) : (
            'outside any run (a file or an imported artifact)'
          )}
        </Fact>
        <Fact term="Digest">
          <code title={artifact.digest ?? ''}>
            {shortDigest(artifact.digest)}
          </code>
        </Fact>
        {facts && (
          <>
            <Fact term="Source" testid="kubelab-lineage-source">
              {sourceName(facts)}, snapshot{' '}
              <code title={facts.source?.digest ?? ''}>
                {shortDigest(facts.source?.digest)}
              </code>
              {facts.source?.git && (
                <>
                  {' '}
                  · git {facts.source.git.commit.slice(0, 8)}
                  {facts.source.git.dirty ? ' (modified)' : ''}
                </>
              )}
            </Fact>
            <Fact term="Parameters" testid="kubelab-lineage-parameters">
              <ul className="jp-kubelab-plain-list">
                {Object.entries(facts.parameters).map(([k, v]) => (
                  <li key={k} data-used={used.has(k)}>
                    <code>
                      {k} = {text(v)}
                    </code>
                    {used.has(k) && (
                      <span className="jp-kubelab-muted">
                        {' '}
                        (used by this step)
                      </span>
                    )}
                  </li>
                ))}
              </ul>
            </Fact>
            {inputs.length > 0 && (
              <Fact term="Inputs" testid="kubelab-lineage-inputs">
                <ul className="jp-kubelab-plain-list">
                  {inputs.map(e => (
                    <li key={e.artifact}>
                      <code>{e.name}</code>
                      <span className="jp-kubelab-muted">
                        {madeBy(e.artifact)}
                      </span>
                    </li>
                  ))}
                </ul>
              </Fact>
            )}
            {facts.environment && (
              <Fact term="Environment">
                Python {facts.environment.python}{' '}
                <code title={facts.environment.digest ?? ''}>
                  {shortDigest(facts.environment.digest)}
                </code>
                {facts.user ? ` · by ${facts.user}` : ''}
              </Fact>
            )}
          </>
        )}
        {graph.consumers.length > 0 && (
          <Fact term="Used by">
            {graph.consumers
              .map(c => `${c.step} in ${runName(c.run)}`)
              .join(', ')}
          </Fact>
        )}
      </dl>
    </div>
  );
}

/** The selected node of the graph, when it is not the artifact asked about. */
function NodeFacts(props: {
  node: ILineageNode;
  graph: ILineageGraph;
  runName: (id: string) => string;
}): JSX.Element | null {
  const { node, graph, runName } = props;
  const facts = node.run ? graph.runs[node.run] : undefined;
  if (node.kind === 'execution' && node.execution) {
    const p = node.execution.properties;
    return (
      <dl className="jp-kubelab-facts" data-testid="kubelab-lineage-node">
        <Fact term="Step">
          {p.step ?? node.execution.name} in {runName(node.execution.run)}
        </Fact>
        <Fact term="State">{node.status}</Fact>
        {p.inputs && Object.keys(p.inputs).length > 0 && (
          <Fact term="Parameters">{parameterList(p.inputs)}</Fact>
        )}
        {p.code_digest && (
          <Fact term="Code">
            <code title={p.code_digest}>{shortDigest(p.code_digest)}</code>
          </Fact>
        )}
        {p.image && <Fact term="Image">{p.image}</Fact>}
      </dl>
    );
  }
  if (node.kind === 'artifact' && node.artifact) {
    return (
      <dl className="jp-kubelab-facts" data-testid="kubelab-lineage-node">
        <Fact term="Artifact">
          {node.artifact.name} ({kindOf(node.artifact)})
        </Fact>
        <Fact term="Digest">
          <code title={node.artifact.digest ?? ''}>
            {shortDigest(node.artifact.digest)}
          </code>
        </Fact>
      </dl>
    );
  }
  return (
    <dl className="jp-kubelab-facts" data-testid="kubelab-lineage-node">
      <Fact term={node.kind === 'source' ? 'Source' : 'Parameters'}>
        {node.kind === 'source'
          ? `${sourceName(facts)} as it ran in ${runName(node.run ?? '')}`
          : parameterList(facts?.parameters ?? {})}
      </Fact>
    </dl>
  );
}

function Lineage(props: ILineageOptions): JSX.Element {
  const { client, label } = props;
  const dag = React.useRef<IDagViewHandle>(null);
  const { value: graph, error } = useRequest(
    () => artifactLineage(client, props.artifact, props.by),
    `${props.by ?? 'ref'}:${props.artifact}`
  );
  const [picked, setSelected] = React.useState<string | null>(null);
  const selected = picked ?? (graph ? `a${graph.artifact.id}` : null);
  const runName = (id: string) => label(id) ?? graph?.runs[id]?.name ?? id;
  const drawn = React.useMemo(
    () => (graph ? nodesOf(graph, runName) : null),
    [graph]
  );
  if (error) {
    return (
      <div className="jp-kubelab-view-empty jp-kubelab-error" role="alert">
        {error}
      </div>
    );
  }
  if (!graph || !drawn) {
    return <div className="jp-kubelab-view-empty">Reading the lineage…</div>;
  }
  const byName = new Map(drawn.nodes.map(n => [n.name, n]));
  const chosen = selected ? byName.get(selected) : undefined;
  return (
    <div className="jp-kubelab-view" data-testid="kubelab-lineage">
      <div
        className="jp-kubelab-view-toolbar"
        role="toolbar"
        aria-label="Lineage"
      >
        <h2 className="jp-kubelab-compare-title">
          Where {graph.artifact.name} came from
        </h2>
        <DagZoomButtons dag={dag} />
      </div>
      <div className="jp-kubelab-view-body">
        <div className="jp-kubelab-view-graph">
          <DagView
            ref={dag}
            steps={drawn.nodes}
            edges={drawn.edges}
            selected={selected}
            ariaLabel={`Lineage of ${graph.artifact.name}`}
            info={name => {
              const node = byName.get(name);
              return {
                state: node?.state ?? 'none',
                status: node?.status ?? '',
                color: COLORS[node?.kind ?? 'artifact'],
                kind: node?.kind
              };
            }}
            onSelect={setSelected}
          />
        </div>
        <div className="jp-kubelab-view-details">
          <Provenance graph={graph} runName={runName} />
          {chosen && chosen.name !== `a${graph.artifact.id}` && (
            <div className="jp-kubelab-lineage-node">
              <h4>Selected: {chosen.label ?? chosen.name}</h4>
              <NodeFacts node={chosen} graph={graph} runName={runName} />
            </div>
          )}
        </div>
      </div>
    </div>
  );
}

/** The lineage of a model or dataset in the main area: graph and provenance. */
export class LineageView extends MainAreaWidget<ReactWidget> {
  constructor(options: ILineageOptions) {
    super({ content: ReactWidget.create(<Lineage {...options} />) });
    this.id = `kubelab-lineage-${options.artifact.replace(/[^\w-]/g, '_')}`;
    this.addClass('jp-kubelab-lineage-view');
    this.title.icon = treeViewIcon;
    this.title.closable = true;
    this.title.label = `Lineage: ${options.name}`;
    this.title.caption = `Where ${options.name} came from (${options.artifact})`;
    this.toolbar.hide();
  }
}
