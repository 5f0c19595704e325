import * as React from 'react';

import { IEdge } from '../api';
import { cellLabel } from '../format';
import { NotebookCell } from '../model';
import {
  CellRole,
  formatTags,
  ICellTags,
  isValidStepName,
  parseTags,
  ROLES
} from '../tags';
import { EdgeVariables } from './EdgeVariables';

/** A field check: empty is fine (no limit), otherwise the text must match. */
function emptyOrMatching(pattern: RegExp, message: string) {
  return (text: string): string | null =>
    text.trim() === '' || pattern.test(text.trim()) ? null : message;
}

export interface ICellStepEditorProps {
  /** The active cell of the active notebook (the editor is keyed by it). */
  cell: NotebookCell | null;
  /** Index of the cell among all the notebook's cells. */
  index: number;
  /** The notebook's steps in notebook order, with their first cell. */
  steps: { name: string; firstCell: number }[];
  /** What the cell is without a role tag of its own ("Part of step load_data"). */
  continues: string;
  /** Data edges found by the analysis, for the read-only dependencies. */
  edges: IEdge[];
}

function readTags(cell: NotebookCell): string[] {
  const tags = cell.model?.getMetadata('tags');
  return Array.isArray(tags) ? tags.filter(t => typeof t === 'string') : [];
}

function writeTags(cell: NotebookCell, spec: ICellTags): void {
  if (cell.isDisposed || !cell.model) {
    return;
  }
  const tags = formatTags(spec);
  if (JSON.stringify(tags) === JSON.stringify(readTags(cell))) {
    return;
  }
  if (tags.length === 0) {
    cell.model.deleteMetadata('tags');
  } else {
    cell.model.setMetadata('tags', tags);
  }
}

/** A text field that commits on Enter or when it loses focus. */
function CommitInput(props: {
  id: string;
  value: string;
  placeholder?: string;
  testid: string;
  invalid?: (text: string) => string | null;
  onCommit: (text: string) => void;
}): JSX.Element {
  const [text, setText] = React.useState(props.value);
  React.useEffect(() => setText(props.value), [props.value]);
  const problem = props.invalid?.(text) ?? null;
  const commit = () => {
    if (!problem && text !== props.value) {
      props.onCommit(text);
    }
  };
  return (
    <div>
      <input
        id={props.id}
        className={
          'jp-mod-styled jp-kubelab-input' +
          (problem ? ' jp-kubelab-invalid' : '')
        }
        value={text}
        placeholder={props.placeholder}
        data-testid={props.testid}
        aria-invalid={problem !== null}
        aria-describedby={problem ? `${props.id}-problem` : undefined}
        onChange={event => setText(event.target.value)}
        onBlur={commit}
        onKeyDown={event => {
          if (event.key === 'Enter') {
            commit();
          } else if (event.key === 'Escape') {
            setText(props.value);
          }
        }}
      />
      {problem && (
        <div
          id={`${props.id}-problem`}
          className="jp-kubelab-error jp-kubelab-hint"
        >
          {problem}
        </div>
      )}
    </div>
  );
}

function suggestName(steps: string[]): string {
  for (let i = 1; ; i++) {
    const name = `step${i}`;
    if (!steps.includes(name)) {
      return name;
    }
  }
}

/** What the analysis found this step needs from earlier steps, grouped by producer. */
function foundInputs(step: string, edges: IEdge[]): IEdge[] {
  return edges.filter(e => e.to === step && e.variables.length > 0);
}

/**
 * The active cell's role in the pipeline, written as Kale's cell tags:
 * `step:NAME`, `prev:NAME`, `skip`, `limit:…`, `image:…`, `imports`, `functions`,
 * `pipeline-parameters`, `pipeline-metrics`.
 */
export function CellStepEditor(props: ICellStepEditorProps): JSX.Element {
  const { cell } = props;
  if (!cell || !cell.model) {
    return (
      <p className="jp-kubelab-muted" data-testid="kubelab-cell-editor">
        Select a cell to make it a step.
      </p>
    );
  }
  // A new cell is a new form: nothing typed for one cell can land on another.
  return <CellForm key={cell.model.id} {...props} cell={cell} />;
}

function CellForm({
  cell,
  index,
  steps,
  continues,
  edges
}: ICellStepEditorProps & { cell: NotebookCell }): JSX.Element {
  const [tags, setTags] = React.useState<string[]>(() => readTags(cell));
  React.useEffect(() => {
    const model = cell.model;
    if (!model) {
      return;
    }
    const update = () => setTags(readTags(cell));
    update();
    model.metadataChanged.connect(update);
    return () => {
      model.metadataChanged.disconnect(update);
    };
  }, [cell]);

  const title = cellLabel(index);
  if (cell.model.type !== 'code') {
    return (
      <p className="jp-kubelab-muted" data-testid="kubelab-cell-editor">
        {title[0].toUpperCase() + title.slice(1)} is {cell.model.type}: only
        code cells become pipeline steps.
      </p>
    );
  }
  const spec = parseTags(tags);
  const update = (change: Partial<ICellTags>) =>
    writeTags(cell, { ...spec, ...change });
  const names = steps.map(s => s.name);
  const inputs = spec.role === 'step' ? foundInputs(spec.step, edges) : [];
  const dataParents = new Set(inputs.map(e => e.from));
  // `prev:` may only name a step that comes earlier in the notebook.
  const earlier = steps
    .filter(s => s.firstCell < index && s.name !== spec.step)
    .map(s => s.name)
    .filter(name => !dataParents.has(name));
  const prevChoices = [...new Set([...earlier, ...spec.prev])];
  const stepNameProblem = (text: string) =>
    isValidStepName(text.trim())
      ? null
      : 'a step name starts with a letter or _ and has only letters, digits, _ and -';
  const roleLabel = (value: CellRole, label: string) =>
    value === 'none' ? continues : label;

  return (
    <div className="jp-kubelab-cell-editor" data-testid="kubelab-cell-editor">
      <div className="jp-kubelab-cell-title" data-testid="kubelab-cell-title">
        {title[0].toUpperCase() + title.slice(1)}
      </div>
      <div className="jp-kubelab-form">
        <label htmlFor="kubelab-cell-role">Role</label>
        <select
          id="kubelab-cell-role"
          className="jp-mod-styled"
          value={spec.role}
          data-testid="kubelab-cell-role"
          onChange={event => {
            const role = event.target.value as CellRole;
            update({
              role,
              step:
                role === 'step' ? spec.step || suggestName(names) : spec.step
            });
          }}
        >
          {ROLES.map(role => (
            <option key={role.value} value={role.value}>
              {roleLabel(role.value, role.label)}
            </option>
          ))}
        </select>
        {spec.role === 'step' && (
          <>
            <label htmlFor="kubelab-cell-step-name">Step name</label>
            <CommitInput
              id="kubelab-cell-step-name"
              value={spec.step}
              testid="kubelab-cell-step-name"
              invalid={stepNameProblem}
              onCommit={text => update({ step: text.trim() })}
            />
            {inputs.length > 0 && (
              <>
                <span className="jp-kubelab-form-label">Needs</span>
                <EdgeVariables
                  edges={inputs}
                  side="from"
                  testid="kubelab-cell-found"
                  label="Dependencies found in the code"
                />
              </>
            )}
            <span className="jp-kubelab-form-label" id="kubelab-cell-after">
              Also after
            </span>
            <div
              className="jp-kubelab-prev"
              data-testid="kubelab-cell-prev"
              role="group"
              aria-labelledby="kubelab-cell-after"
            >
              {prevChoices.length === 0 && (
                <span className="jp-kubelab-muted">
                  {dataParents.size > 0
                    ? 'no other earlier step'
                    : 'no earlier step'}
                </span>
              )}
              {prevChoices.map(name => (
                <label key={name} className="jp-kubelab-check">
                  <input
                    type="checkbox"
                    checked={spec.prev.includes(name)}
                    data-testid={`kubelab-cell-prev-${name}`}
                    onChange={event =>
                      update({
                        prev: event.target.checked
                          ? [...spec.prev, name]
                          : spec.prev.filter(p => p !== name)
                      })
                    }
                  />
                  {name}
                  {!names.includes(name) && (
                    <span className="jp-kubelab-error"> (no such step)</span>
                  )}
                </label>
              ))}
            </div>
            <label htmlFor="kubelab-cell-cpu">CPU</label>
            <CommitInput
              id="kubelab-cell-cpu"
              value={spec.cpu}
              placeholder="e.g. 2 or 500m"
              testid="kubelab-cell-cpu"
              invalid={emptyOrMatching(
                /^\d+(\.\d+)?m?$/,
                'a CPU quantity: 2, 0.5 or 500m'
              )}
              onCommit={text => update({ cpu: text })}
            />
            <label htmlFor="kubelab-cell-memory">Memory</label>
            <CommitInput
              id="kubelab-cell-memory"
              value={spec.memory}
              placeholder="e.g. 4Gi"
              testid="kubelab-cell-memory"
              invalid={emptyOrMatching(
                /^\d+(\.\d+)?([EPTGMK]i?|[mk])?$/,
                'a memory quantity: 512Mi, 4Gi'
              )}
              onCommit={text => update({ memory: text })}
            />
            <label htmlFor="kubelab-cell-gpu">GPUs</label>
            <CommitInput
              id="kubelab-cell-gpu"
              value={spec.gpu}
              placeholder="e.g. 1"
              testid="kubelab-cell-gpu"
              invalid={emptyOrMatching(/^\d+$/, 'a whole number of GPUs')}
              onCommit={text => update({ gpu: text })}
            />
            <label htmlFor="kubelab-cell-image">Image</label>
            <CommitInput
              id="kubelab-cell-image"
              value={spec.image}
              placeholder="e.g. python:3.11"
              testid="kubelab-cell-image"
              onCommit={text => update({ image: text })}
            />
          </>
        )}
      </div>
      <div
        className="jp-kubelab-tags jp-kubelab-muted"
        data-testid="kubelab-cell-tags"
      >
        tags: {tags.length ? tags.join(', ') : '(none)'}
      </div>
    </div>
  );
}
