import * as React from 'react';

import { ToolbarButtonComponent } from '@jupyterlab/ui-components';

import { IEdge } from '../api';
import {
  bestLayout,
  edgePath,
  endpoints,
  fitName,
  IDagNode,
  labelOf,
  linksOf,
  NODE_H
} from '../dagLayout';

export type { IDagNode } from '../dagLayout';

export interface IDagNodeInfo {
  state: string;
  /** Second line of the node: "succeeded · 1.2 s", "cached from #5". */
  status: string;
  color: number;
  /** Another look for other kinds of nodes: class `jp-kubelab-dag-kind-KIND`. */
  kind?: string;
}

export interface IDagViewProps {
  steps: IDagNode[];
  edges: IEdge[];
  info: (step: string) => IDagNodeInfo;
  selected: string | null;
  onSelect: (step: string) => void;
  /** What the graph is, for screen readers (default: the pipeline graph). */
  ariaLabel?: string;
}

export interface IDagViewHandle {
  zoomBy: (factor: number) => void;
  fit: () => void;
}

/** Below this zoom the 12 px status line would render under 11 px. */
export const MIN_READABLE_ZOOM = 11 / 12;
const MIN_ZOOM = 0.3;
const MAX_ZOOM = 3;

interface IView {
  k: number;
  x: number;
  y: number;
}

/**
 * The pipeline as a graph at a readable size: it opens at zoom 1 (or what fits,
 * never below the zoom where labels drop under 11 px), then zooms (Ctrl+wheel,
 * +/-, the toolbar) and pans (drag, wheel, arrow keys). Nodes are coloured by their
 * state in the selected run and are buttons: click, Enter or Space selects one.
 */
export const DagView = React.forwardRef<IDagViewHandle, IDagViewProps>(
  ({ steps, edges, info, selected, onSelect, ariaLabel }, handle) => {
    const svg = React.useRef<SVGSVGElement>(null);
    const [view, setView] = React.useState<IView>({ k: 1, x: 0, y: 0 });
    const [size, setSize] = React.useState({ w: 0, h: 0 });
    const shape = steps
      .map(s => `${s.name}<${s.depends_on.join(',')}`)
      .join(';');
    // The direction is chosen when the graph's shape or the first size is known,
    // not on every resize, so the graph does not flip under the user's eyes.
    const sized = size.w > 0;
    const graph = React.useMemo(
      () => bestLayout(steps, size.w, size.h),
      [shape, sized]
    );
    const { nodes, width, height } = graph;
    const links = React.useMemo(() => linksOf(steps, edges), [steps, edges]);
    const ends = React.useMemo(() => endpoints(graph, links), [graph, links]);
    const drag = React.useRef<{ x: number; y: number } | null>(null);

    const fitted = React.useCallback((): IView => {
      if (size.w === 0) {
        return { k: 1, x: 0, y: 0 };
      }
      const k = Math.max(
        MIN_READABLE_ZOOM,
        Math.min(1.25, size.w / width, size.h / height)
      );
      return {
        k,
        x: Math.max(0, (size.w - width * k) / 2),
        y: Math.max(0, (size.h - height * k) / 2)
      };
    }, [size.w, size.h, width, height]);

    const zoomAt = React.useCallback(
      (factor: number, cx = size.w / 2, cy = size.h / 2) =>
        setView(v => {
          const k = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, v.k * factor));
          return {
            k,
            x: cx - ((cx - v.x) * k) / v.k,
            y: cy - ((cy - v.y) * k) / v.k
          };
        }),
      [size.w, size.h]
    );
    React.useImperativeHandle(
      handle,
      () => ({
        zoomBy: factor => zoomAt(factor),
        fit: () => setView(fitted())
      }),
      [zoomAt, fitted]
    );

    // Follow the element's size; fit again when the graph's shape or the size changes.
    React.useEffect(() => {
      const node = svg.current;
      if (!node) {
        return;
      }
      const observer = new ResizeObserver(([entry]) =>
        setSize({ w: entry.contentRect.width, h: entry.contentRect.height })
      );
      observer.observe(node);
      return () => observer.disconnect();
    }, []);
    React.useEffect(() => setView(fitted()), [graph]);

    // Wheel: pan, or zoom at the pointer with Ctrl/Cmd (and pinch). Not passive.
    React.useEffect(() => {
      const node = svg.current;
      if (!node) {
        return;
      }
      const onWheel = (event: WheelEvent) => {
        event.preventDefault();
        if (event.ctrlKey || event.metaKey) {
          const box = node.getBoundingClientRect();
          zoomAt(
            Math.exp(-event.deltaY / 300),
            event.clientX - box.left,
            event.clientY - box.top
          );
        } else {
          setView(v => ({
            ...v,
            x: v.x - event.deltaX,
            y: v.y - event.deltaY
          }));
        }
      };
      node.addEventListener('wheel', onWheel, { passive: false });
      return () => node.removeEventListener('wheel', onWheel);
    }, [zoomAt]);

    /** Pan so that step `name` is in sight (it got the focus, or was selected elsewhere). */
    const reveal = React.useCallback(
      (name: string) => {
        const node = nodes.get(name);
        if (!node || size.w === 0) {
          return;
        }
        setView(v => {
          const left = node.x * v.k + v.x;
          const top = node.y * v.k + v.y;
          const right = left + node.w * v.k;
          const bottom = top + NODE_H * v.k;
          const margin = 16;
          const inside =
            left >= margin &&
            top >= margin &&
            right <= size.w - margin &&
            bottom <= size.h - margin;
          if (inside) {
            return v;
          }
          return {
            ...v,
            x: size.w / 2 - (node.x + node.w / 2) * v.k,
            y: size.h / 2 - (node.y + NODE_H / 2) * v.k
          };
        });
      },
      [nodes, size.w, size.h]
    );
    React.useEffect(() => {
      if (selected) {
        reveal(selected);
      }
    }, [selected]);

    const onKeyDown = (event: React.KeyboardEvent) => {
      const pan: Record<string, [number, number]> = {
        ArrowLeft: [40, 0],
        ArrowRight: [-40, 0],
        ArrowUp: [0, 40],
        ArrowDown: [0, -40]
      };
      if (event.key === '+' || event.key === '=') {
        zoomAt(1.2);
      } else if (event.key === '-') {
        zoomAt(1 / 1.2);
      } else if (event.key === '0') {
        setView(fitted());
      } else if (event.key in pan && event.target === svg.current) {
        const [dx, dy] = pan[event.key];
        setView(v => ({ ...v, x: v.x + dx, y: v.y + dy }));
      } else {
        return;
      }
      event.preventDefault();
    };

    if (steps.length === 0) {
      return null;
    }
    return (
      <svg
        ref={svg}
        className="jp-kubelab-dag"
        data-testid="kubelab-dag"
        data-zoom={view.k.toFixed(3)}
        data-direction={graph.direction}
        tabIndex={0}
        role="group"
        aria-label={`${ariaLabel ?? 'Pipeline graph'}: Tab to a node, Enter to select it; + and - zoom, arrows pan, 0 fits`}
        onKeyDown={onKeyDown}
        onPointerDown={event => {
          if ((event.target as Element).closest('.jp-kubelab-dag-node')) {
            return;
          }
          drag.current = { x: event.clientX, y: event.clientY };
          svg.current?.setPointerCapture(event.pointerId);
        }}
        onPointerMove={event => {
          const start = drag.current;
          if (start) {
            const dx = event.clientX - start.x;
            const dy = event.clientY - start.y;
            drag.current = { x: event.clientX, y: event.clientY };
            setView(v => ({ ...v, x: v.x + dx, y: v.y + dy }));
          }
        }}
        onPointerUp={() => (drag.current = null)}
      >
        <defs>
          <marker
            id="jp-kubelab-arrow"
            viewBox="0 0 10 10"
            refX="9"
            refY="5"
            markerUnits="userSpaceOnUse"
            markerWidth="9"
            markerHeight="9"
            orient="auto-start-reverse"
          >
            <path d="M 0 0 L 10 5 L 0 10 z" className="jp-kubelab-dag-arrow" />
          </marker>
        </defs>
        <g transform={`translate(${view.x}, ${view.y}) scale(${view.k})`}>
          {links.map(link => {
            const a = nodes.get(link.from);
            const b = nodes.get(link.to);
            if (!a || !b) {
              return null;
            }
            const start = ends.get(`out:${link.from}:${link.to}`);
            const end = ends.get(`in:${link.from}:${link.to}`);
            if (!start || !end) {
              return null;
            }
            const near = selected === link.from || selected === link.to;
            return (
              <path
                key={`${link.from}->${link.to}`}
                className={
                  'jp-kubelab-dag-edge' +
                  (link.variables.length === 0
                    ? ' jp-kubelab-dag-edge-order'
                    : '') +
                  (near ? ' jp-mod-selected' : '')
                }
                d={edgePath(start, end, graph.direction)}
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
          {[...nodes.values()].map(({ step, x, y, w }) => {
            const { state, status, color, kind } = info(step.name);
            const label = labelOf(step);
            const select = () => onSelect(step.name);
            return (
              <g
                key={step.name}
                className={
                  `jp-kubelab-dag-node jp-kubelab-state-${state}` +
                  (kind ? ` jp-kubelab-dag-kind-${kind}` : '') +
                  (step.name === selected ? ' jp-mod-selected' : '')
                }
                transform={`translate(${x}, ${y})`}
                data-testid={`kubelab-dag-node-${step.name}`}
                data-state={state}
                role="button"
                tabIndex={0}
                aria-pressed={step.name === selected}
                aria-label={`${label}: ${status}`}
                onClick={select}
                onFocus={() => reveal(step.name)}
                onKeyDown={event => {
                  if (event.key === 'Enter' || event.key === ' ') {
                    event.preventDefault();
                    event.stopPropagation();
                    select();
                  }
                }}
              >
                <title>{`${label}: ${status}`}</title>
                <rect
                  className="jp-kubelab-dag-box"
                  width={w}
                  height={NODE_H}
                  rx={6}
                />
                <rect
                  className="jp-kubelab-dag-bar"
                  width={5}
                  height={NODE_H}
                  rx={2}
                />
                <circle
                  className={`jp-kubelab-dag-swatch jp-kubelab-color-${color}`}
                  cx={18}
                  cy={18}
                  r={5}
                />
                <text
                  className="jp-kubelab-dag-name"
                  x={30}
                  y={18}
                  dominantBaseline="central"
                >
                  {fitName(label, w)}
                </text>
                <text
                  className="jp-kubelab-dag-status"
                  x={13}
                  y={37}
                  dominantBaseline="central"
                >
                  {status}
                </text>
              </g>
            );
          })}
        </g>
      </svg>
    );
  }
);

/** Zoom out, zoom in and fit, for the toolbar of a view that shows a DagView. */
export function DagZoomButtons({
  dag
}: {
  dag: React.RefObject<IDagViewHandle>;
}): JSX.Element {
  return (
    <span className="jp-kubelab-zoom">
      <ToolbarButtonComponent
        tooltip="Zoom out (-)"
        label="−"
        dataset={{ testid: 'kubelab-zoom-out' }}
        onClick={() => dag.current?.zoomBy(1 / 1.2)}
      />
      <ToolbarButtonComponent
        tooltip="Zoom in (+)"
        label="+"
        dataset={{ testid: 'kubelab-zoom-in' }}
        onClick={() => dag.current?.zoomBy(1.2)}
      />
      <ToolbarButtonComponent
        tooltip="Fit (0)"
        label="Fit"
        dataset={{ testid: 'kubelab-zoom-fit' }}
        onClick={() => dag.current?.fit()}
      />
    </span>
  );
}
