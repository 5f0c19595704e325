import * as React from 'react';

import { ICompiledStep, IEdge, RunState } from '../api';

export interface IDagViewProps {
  steps: ICompiledStep[];
  edges: IEdge[];
  /** Notebook step name -> state in the selected run. */
  states: Record<string, RunState>;
  onSelectStep: (step: string) => void;
}

const NODE_W = 120;
const NODE_H = 28;
const GAP_X = 14;
const GAP_Y = 30;
const PAD = 8;

interface INode {
  step: ICompiledStep;
  x: number;
  y: number;
}

interface ILink {
  from: string;
  to: string;
  variables: string[];
}

/** Layers by depth (longest path from a root); nodes of a layer side by side. */
function layout(steps: ICompiledStep[]): {
  nodes: Map<string, INode>;
  width: number;
  height: number;
} {
  const byName = new Map(steps.map(s => [s.name, s]));
  const depth = new Map<string, number>();
  const visit = (name: string, seen: Set<string>): number => {
    const known = depth.get(name);
    if (known !== undefined) {
      return known;
    }
    if (seen.has(name)) {
      return 0; // a cycle: the compiler reports it, just draw something
    }
    seen.add(name);
    const step = byName.get(name);
    let d = 0;
    for (const parent of step?.depends_on ?? []) {
      if (byName.has(parent)) {
        d = Math.max(d, visit(parent, seen) + 1);
      }
    }
    depth.set(name, d);
    return d;
  };
  steps.forEach(s => visit(s.name, new Set()));
  const layers: ICompiledStep[][] = [];
  for (const step of steps) {
    const d = depth.get(step.name) ?? 0;
    (layers[d] ??= []).push(step);
  }
  const widest = Math.max(1, ...layers.map(l => l?.length ?? 0));
  const width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X;
  const nodes = new Map<string, INode>();
  layers.forEach((layer, row) => {
    const rowWidth = layer.length * NODE_W + (layer.length - 1) * GAP_X;
    const start = (width - rowWidth) / 2;
    layer.forEach((step, i) => {
      nodes.set(step.name, {
        step,
        x: start + i * (NODE_W + GAP_X),
        y: PAD + row * (NODE_H + GAP_Y)
      });
    });
  });
  const height = PAD * 2 + layers.length * NODE_H + (layers.length - 1) * GAP_Y;
  return { nodes, width, height };
}

function label(name: string): string {
  return name.length > 16 ? `${name.slice(0, 15)}…` : name;
}

/** The pipeline as a graph: steps, data edges (and `prev:` edges), run state colours. */
export function DagView({
  steps,
  edges,
  states,
  onSelectStep
}: IDagViewProps): JSX.Element | null {
  const { nodes, width, height } = React.useMemo(() => layout(steps), [steps]);
  const links = React.useMemo(() => {
    const all = new Map<string, ILink>();
    for (const edge of edges) {
      all.set(`${edge.from}\u0000${edge.to}`, { ...edge });
    }
    for (const step of steps) {
      for (const parent of step.depends_on) {
        const key = `${parent}\u0000${step.name}`;
        if (!all.has(key)) {
          all.set(key, { from: parent, to: step.name, variables: [] });
        }
      }
    }
    return [...all.values()];
  }, [steps, edges]);
  if (steps.length === 0) {
    return null;
  }
  return (
    <svg
      className="jp-kubelab-dag"
      data-testid="kubelab-dag"
      viewBox={`0 0 ${width} ${height}`}
      width="100%"
      style={{
        maxWidth: `${width}px`,
        maxHeight: `${Math.max(height, 60) * 1.5}px`
      }}
      role="img"
      aria-label="pipeline graph"
    >
      <defs>
        <marker
          id="jp-kubelab-arrow"
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="6"
          markerHeight="6"
          orient="auto-start-reverse"
        >
          <path d="M 0 0 L 10 5 L 0 10 z" className="jp-kubelab-dag-arrow" />
        </marker>
      </defs>
      {links.map(link => {
        const a = nodes.get(link.from);
        const b = nodes.get(link.to);
        if (!a || !b) {
          return null;
        }
        const x1 = a.x + NODE_W / 2;
        const y1 = a.y + NODE_H;
        const x2 = b.x + NODE_W / 2;
        const y2 = b.y;
        const mid = (y1 + y2) / 2;
        return (
          <path
            key={`${link.from}->${link.to}`}
            className={
              'jp-kubelab-dag-edge' +
              (link.variables.length === 0 ? ' jp-kubelab-dag-edge-order' : '')
            }
            d={`M ${x1} ${y1} C ${x1} ${mid}, ${x2} ${mid}, ${x2} ${y2 - 1}`}
            markerEnd="url(#jp-kubelab-arrow)"
            data-testid={`kubelab-dag-edge-${link.from}-${link.to}`}
          >
            <title>
              {link.variables.length > 0
                ? `${link.from} → ${link.to}: ${link.variables.join(', ')}`
                : `${link.to} runs after ${link.from}`}
            </title>
          </path>
        );
      })}
      {[...nodes.values()].map(({ step, x, y }) => {
        const state: string = states[step.name] ?? 'none';
        return (
          <g
            key={step.name}
            className={`jp-kubelab-dag-node jp-kubelab-state-${state}`}
            transform={`translate(${x}, ${y})`}
            data-testid={`kubelab-dag-node-${step.name}`}
            data-state={state}
            onClick={() => onSelectStep(step.name)}
          >
            <title>
              {`${step.name} (${state === 'none' ? 'not run' : state})\ncells ${step.cells.join(', ')}` +
                (step.outputs.length
                  ? `\noutputs: ${step.outputs.join(', ')}`
                  : '')}
            </title>
            <rect width={NODE_W} height={NODE_H} rx={5} ry={5} />
            <rect
              className="jp-kubelab-dag-bar"
              width={5}
              height={NODE_H}
              rx={2}
            />
            <text
              x={NODE_W / 2 + 2}
              y={NODE_H / 2}
              dominantBaseline="central"
              textAnchor="middle"
            >
              {label(step.name)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
