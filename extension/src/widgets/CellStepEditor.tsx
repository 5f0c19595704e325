import * as React from 'react';

import { Notebook } from '@jupyterlab/notebook';

import {
  CellRole,
  formatTags,
  ICellTags,
  isValidStepName,
  parseTags,
  ROLES
} from '../tags';

export type NotebookCell = NonNullable<Notebook['activeCell']>;

/** A field check: empty is fine (no limit), otherwise the text must match. */
function emptyOrMatching(pattern: RegExp, message: string) {
  return (text: string): string | null =>
    text.trim() === '' || pattern.test(text.trim()) ? null : message;
}

export interface ICellStepEditorProps {
  cell: NotebookCell | null;
  /** Index of the cell among all the notebook's cells. */
  index: number;
  /** Steps of the compiled pipeline, for `prev:` choices. */
  steps: string[];
}

function readTags(cell: NotebookCell): string[] {
  const tags = cell.model.getMetadata('tags');
  return Array.isArray(tags) ? tags.filter(t => typeof t === 'string') : [];
}

function writeTags(cell: NotebookCell, spec: ICellTags): void {
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
    <>
      <input
        className={
          'jp-mod-styled jp-kubelab-input' +
          (problem ? ' jp-kubelab-invalid' : '')
        }
        value={text}
        placeholder={props.placeholder}
        data-testid={props.testid}
        aria-invalid={problem !== null}
        title={problem ?? undefined}
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
        <div className="jp-kubelab-error jp-kubelab-hint">{problem}</div>
      )}
    </>
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

/**
 * The active cell's role in the pipeline, written as Kale's cell tags:
 * `step:NAME`, `prev:NAME`, `skip`, `limit:…`, `image:…`, `imports`, `functions`,
 * `pipeline-parameters`, `pipeline-metrics`.
 */
export function CellStepEditor({
  cell,
  index,
  steps
}: ICellStepEditorProps): JSX.Element {
  const [tags, setTags] = React.useState<string[]>(() =>
    cell ? readTags(cell) : []
  );
  React.useEffect(() => {
    if (!cell) {
      setTags([]);
      return;
    }
    const update = () => setTags(readTags(cell));
    update();
    cell.model.metadataChanged.connect(update);
    return () => {
      cell.model.metadataChanged.disconnect(update);
    };
  }, [cell]);

  if (!cell) {
    return <p className="jp-kubelab-muted">Select a cell to make it a step.</p>;
  }
  if (cell.model.type !== 'code') {
    return (
      <p className="jp-kubelab-muted" data-testid="kubelab-cell-editor">
        Cell [{index}] is {cell.model.type}: only code cells become pipeline
        steps.
      </p>
    );
  }
  const spec = parseTags(tags);
  const update = (change: Partial<ICellTags>) =>
    writeTags(cell, { ...spec, ...change });
  const otherSteps = steps.filter(s => s !== spec.step);
  const stepNameProblem = (text: string) =>
    isValidStepName(text.trim())
      ? null
      : 'a step name starts with a letter or _ and has only letters, digits, _ and -';

  return (
    <div className="jp-kubelab-cell-editor" data-testid="kubelab-cell-editor">
      <div className="jp-kubelab-form">
        <label htmlFor="kubelab-cell-role">Cell [{index}]</label>
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
                role === 'step' ? spec.step || suggestName(steps) : spec.step
            });
          }}
        >
          {ROLES.map(role => (
            <option key={role.value} value={role.value}>
              {role.label}
            </option>
          ))}
        </select>
        {spec.role === 'step' && (
          <>
            <label>Step name</label>
            <div>
              <CommitInput
                value={spec.step}
                testid="kubelab-cell-step-name"
                invalid={stepNameProblem}
                onCommit={text => update({ step: text.trim() })}
              />
            </div>
            <label>After</label>
            <div className="jp-kubelab-prev" data-testid="kubelab-cell-prev">
              {otherSteps.length === 0 && spec.prev.length === 0 && (
                <span className="jp-kubelab-muted">no other steps</span>
              )}
              {[...new Set([...otherSteps, ...spec.prev])].map(name => (
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
                </label>
              ))}
            </div>
            <label>CPU</label>
            <CommitInput
              value={spec.cpu}
              placeholder="e.g. 2 or 500m"
              testid="kubelab-cell-cpu"
              invalid={emptyOrMatching(
                /^\d+(\.\d+)?m?$/,
                'a CPU quantity: 2, 0.5 or 500m'
              )}
              onCommit={text => update({ cpu: text })}
            />
            <label>Memory</label>
            <CommitInput
              value={spec.memory}
              placeholder="e.g. 4Gi"
              testid="kubelab-cell-memory"
              invalid={emptyOrMatching(
                /^\d+(\.\d+)?([EPTGMK]i?|[mk])?$/,
                'a memory quantity: 512Mi, 4Gi'
              )}
              onCommit={text => update({ memory: text })}
            />
            <label>GPUs</label>
            <CommitInput
              value={spec.gpu}
              placeholder="nvidia.com/gpu"
              testid="kubelab-cell-gpu"
              invalid={emptyOrMatching(/^\d+$/, 'a whole number of GPUs')}
              onCommit={text => update({ gpu: text })}
            />
            <label>Image</label>
            <CommitInput
              value={spec.image}
              placeholder="default image"
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
