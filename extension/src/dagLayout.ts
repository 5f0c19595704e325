/**
 * Where the nodes and edges of a graph go: a layered layout, top to bottom (as the
 * KFP UI draws) or left to right (as Elyra does), with edges spread along each
 * node's side. Pure functions of the nodes and edges; `widgets/DagView.tsx` draws
 * the result and handles zoom, pan and selection.
 */
import { IEdge } from './api';

/**
 * A node of the graph: a pipeline step (a compiled step is one), or any other node
 * drawn the same way (the lineage view's artifacts and executions).
 */
export interface IDagNode {
  /** Unique among the nodes; edges and `depends_on` refer to it. */
  name: string;
  depends_on: string[];
  /** What the node shows, when it is not its name. */
  label?: string;
}

// Sizes in CSS pixels at zoom 1; fonts are set in CSS (13 px names, 12 px status).
export const NODE_H = 50;
const MIN_W = 150;
const MAX_W = 280;
/** Between nodes of one layer, and between layers. */
const GAP_IN = 24;
const GAP_ACROSS = 48;
const PAD = 16;

/** Layers top to bottom (as the KFP UI draws), or left to right (as Elyra does). */
export type Direction = 'down' | 'right';

interface INode {
  step: IDagNode;
  x: number;
  y: number;
  w: number;
}

interface ILink {
  from: string;
  to: string;
  variables: string[];
}

export interface ILayout {
  nodes: Map<string, INode>;
  width: number;
  height: number;
  direction: Direction;
}

export const labelOf = (node: IDagNode): string => node.label ?? node.name;

function nodeWidth(name: string): number {
  return Math.max(MIN_W, Math.min(MAX_W, Math.ceil(name.length * 8) + 44));
}

/** A name that fits the node, cut in the middle so its distinctive end stays. */
export function fitName(name: string, width: number): string {
  const room = Math.floor((width - 44) / 8);
  if (name.length <= room) {
    return name;
  }
  const head = Math.ceil((room - 1) / 2);
  return `${name.slice(0, head)}…${name.slice(name.length - (room - 1 - head))}`;
}

/** Steps by depth (longest path from a root), in notebook order within a layer. */
function layersOf(steps: IDagNode[]): IDagNode[][] {
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
    let d = 0;
    for (const parent of byName.get(name)?.depends_on ?? []) {
      if (byName.has(parent)) {
        d = Math.max(d, visit(parent, seen) + 1);
      }
    }
    depth.set(name, d);
    return d;
  };
  steps.forEach(s => visit(s.name, new Set()));
  const layers: IDagNode[][] = [];
  for (const step of steps) {
    (layers[depth.get(step.name) ?? 0] ??= []).push(step);
  }
  return layers.filter(Boolean);
}

/** Layers across `direction`, each layer's nodes side by side and centred. */
function layout(steps: IDagNode[], direction: Direction): ILayout {
  const layers = layersOf(steps);
  const nodes = new Map<string, INode>();
  if (direction === 'down') {
    const rowWidth = (layer: IDagNode[]) =>
      layer.reduce((sum, s) => sum + nodeWidth(labelOf(s)), 0) +
      (layer.length - 1) * GAP_IN;
    const width = PAD * 2 + Math.max(MIN_W, ...layers.map(rowWidth));
    layers.forEach((layer, row) => {
      let x = (width - rowWidth(layer)) / 2;
      for (const step of layer) {
        const w = nodeWidth(labelOf(step));
        nodes.set(step.name, {
          step,
          x,
          y: PAD + row * (NODE_H + GAP_ACROSS),
          w
        });
        x += w + GAP_IN;
      }
    });
    const height =
      PAD * 2 + layers.length * NODE_H + (layers.length - 1) * GAP_ACROSS;
    return { nodes, width, height, direction };
  }
  const columnHeight = (layer: IDagNode[]) =>
    layer.length * NODE_H + (layer.length - 1) * GAP_IN;
  const height = PAD * 2 + Math.max(NODE_H, ...layers.map(columnHeight));
  let x = PAD;
  layers.forEach(layer => {
    const w = Math.max(...layer.map(s => nodeWidth(labelOf(s))));
    let y = (height - columnHeight(layer)) / 2;
    for (const step of layer) {
      nodes.set(step.name, { step, x, y, w });
      y += NODE_H + GAP_IN;
    }
    x += w + GAP_ACROSS;
  });
  return { nodes, width: x - GAP_ACROSS + PAD, height, direction };
}

/** The direction that shows the graph at the largest zoom in a `w` × `h` area. */
export function bestLayout(steps: IDagNode[], w: number, h: number): ILayout {
  const down = layout(steps, 'down');
  if (w === 0 || h === 0) {
    return down;
  }
  const right = layout(steps, 'right');
  const scale = (l: ILayout) => Math.min(w / l.width, h / l.height);
  // Top to bottom unless the other way shows it clearly bigger.
  return scale(right) > scale(down) * 1.15 ? right : down;
}

export function linksOf(steps: IDagNode[], edges: IEdge[]): ILink[] {
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
}

export interface IPoint {
  x: number;
  y: number;
}

/**
 * Where each edge leaves its source and enters its target: spread along the
 * node's side in the order of the other ends, so arrows into a step with several
 * inputs do not meet in one point.
 */
export function endpoints(
  { nodes, direction }: ILayout,
  links: ILink[]
): Map<string, IPoint> {
  const ends = new Map<string, IPoint>();
  const down = direction === 'down';
  const centre = (name: string) => {
    const node = nodes.get(name);
    return node ? (down ? node.x + node.w / 2 : node.y + NODE_H / 2) : 0;
  };
  const spread = (name: string, side: 'in' | 'out') => {
    const node = nodes.get(name);
    if (!node) {
      return;
    }
    const mine = links
      .filter(l => (side === 'in' ? l.to : l.from) === name)
      .sort(
        (p, q) =>
          centre(side === 'in' ? p.from : p.to) -
          centre(side === 'in' ? q.from : q.to)
      );
    const length = down ? node.w - 40 : NODE_H - 16;
    const room = Math.min(length, (down ? 24 : 10) * (mine.length - 1));
    mine.forEach((l, i) => {
      const offset =
        -room / 2 + (mine.length > 1 ? (room * i) / (mine.length - 1) : 0);
      ends.set(
        `${side}:${l.from}:${l.to}`,
        down
          ? {
              x: node.x + node.w / 2 + offset,
              y: side === 'in' ? node.y : node.y + NODE_H
            }
          : {
              x: side === 'in' ? node.x : node.x + node.w,
              y: node.y + NODE_H / 2 + offset
            }
      );
    });
  };
  for (const name of nodes.keys()) {
    spread(name, 'in');
    spread(name, 'out');
  }
  return ends;
}

/** A smooth edge from `a` to `b`, leaving and entering along the layout's direction. */
export function edgePath(a: IPoint, b: IPoint, direction: Direction): string {
  if (direction === 'down') {
    const mid = (a.y + b.y) / 2;
    return `M ${a.x} ${a.y} C ${a.x} ${mid}, ${b.x} ${mid}, ${b.x} ${b.y - 2}`;
  }
  const mid = (a.x + b.x) / 2;
  return `M ${a.x} ${a.y} C ${mid} ${a.y}, ${mid} ${b.y}, ${b.x - 2} ${b.y}`;
}
