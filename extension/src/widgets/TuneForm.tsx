import * as React from 'react';

import { MainAreaWidget } from '@jupyterlab/apputils';
import { Button, ReactWidget } from '@jupyterlab/ui-components';

import { ICompileResult, IParameterSpec, KubelabClient } from '../api';
import { kubelabIcon } from '../icons';
import {
  asApiError,
  claimed,
  errorFor,
  Field,
  FieldError,
  NumberField,
  numeric,
  whole
} from './FormField';
import { useJobForm } from './useJobForm';
import { BackendSelect } from './TrainForm';

export interface ITuneFormProps {
  client: KubelabClient;
  /** The notebook to tune, relative to the Jupyter root. */
  path: string;
  onStarted: (jobId: string) => void;
}

/** How one pipeline parameter is searched. */
interface ISpace {
  tune: boolean;
  mode: 'range' | 'choices';
  min: string;
  max: string;
  log: boolean;
  choices: string;
}

/** A range's bounds and their labels. */
const BOUNDS: ReadonlyArray<['min' | 'max', string]> = [
  ['min', 'from'],
  ['max', 'to']
];

/** Optuna's samplers as Katib names them (what the local backend runs). */
const ALGORITHMS = ['tpe', 'random', 'grid', 'multivariate-tpe', 'cmaes'];

const FIELDS = {
  objective: ['objectives', 'objective'],
  algorithm: ['algorithm'],
  trials: ['trial_config'],
  backend: ['backend'],
  template: ['template']
};

/** A search space to start from: around a number's value, or its value as a choice. */
export function defaultSpace(spec: IParameterSpec): ISpace {
  const value = spec.default;
  const space: ISpace = {
    tune: false,
    mode: 'choices',
    min: '',
    max: '',
    log: false,
    choices: String(value ?? '')
  };
  if (
    typeof value === 'number' &&
    (spec.type === 'int' || spec.type === 'float')
  ) {
    const int = spec.type === 'int';
    const [min, max] =
      value > 0
        ? [int ? Math.max(1, Math.floor(value / 2)) : value / 2, value * 2]
        : [value - (int ? 10 : 1), value + (int ? 10 : 1)];
    return { ...space, mode: 'range', min: String(min), max: String(max) };
  }
  if (spec.type === 'bool') {
    return { ...space, choices: 'True, False' };
  }
  return space;
}

/** The choices as the parameter's type has them. */
function parseChoices(text: string, type: string): unknown[] {
  return text
    .split(',')
    .map(item => item.trim())
    .filter(Boolean)
    .map(item =>
      type === 'int'
        ? whole(item)
        : type === 'float'
          ? numeric(item)
          : type === 'bool'
            ? /^true$/i.test(item)
            : item
    );
}

/** `demo.ipynb` → `demo-tune`: the experiment's name (a DNS-1123 label, as Katib's). */
function experimentName(path: string): string {
  const stem = (path.split('/').pop() ?? 'notebook')
    .replace(/\.ipynb$/, '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+|-+$/g, '')
    .slice(0, 40);
  return `${stem || 'notebook'}-tune`;
}

/** Maximize what reads like a score, minimize the rest (a loss, an error). */
function defaultDirection(metric: string): 'minimize' | 'maximize' {
  return /acc|auc|f1|score|precision|recall|r2/i.test(metric)
    ? 'maximize'
    : 'minimize';
}

/** One parameter's row: tune it or not, a range or choices. */
function SpaceRow(props: {
  name: string;
  spec: IParameterSpec;
  space: ISpace;
  error: string | null;
  onChange: (space: ISpace) => void;
}): JSX.Element {
  const { name, spec, space, error, onChange } = props;
  const id = `kubelab-tune-${name}`;
  const set = (change: Partial<ISpace>) => onChange({ ...space, ...change });
  const numericType = spec.type === 'int' || spec.type === 'float';
  return (
    <fieldset
      className="jp-kubelab-space"
      data-testid={`kubelab-space-${name}`}
      aria-invalid={error !== null}
    >
      <legend>
        <label className="jp-kubelab-check">
          <input
            type="checkbox"
            checked={space.tune}
            data-testid={`${id}-tune`}
            onChange={event => set({ tune: event.target.checked })}
          />
          Tune <code>{name}</code>
        </label>
        <span className="jp-kubelab-muted">
          {' '}
          {spec.type}, now {JSON.stringify(spec.default)}
        </span>
      </legend>
      {space.tune && (
        <div className="jp-kubelab-space-fields">
          <label>
            <span className="jp-kubelab-sr-only">{name}: </span>Search
            <select
              className="jp-mod-styled"
              value={space.mode}
              onChange={event =>
                set({ mode: event.target.value as ISpace['mode'] })
              }
            >
              {numericType && <option value="range">a range</option>}
              <option value="choices">choices</option>
            </select>
          </label>
          {space.mode === 'range' ? (
            <>
              {BOUNDS.map(([bound, word]) => (
                <label key={bound}>
                  <span className="jp-kubelab-sr-only">{name}: </span>
                  {word}
                  <input
                    className="jp-mod-styled jp-kubelab-input"
                    type="number"
                    step={spec.type === 'int' ? 1 : 'any'}
                    value={space[bound]}
                    onChange={event => set({ [bound]: event.target.value })}
                  />
                </label>
              ))}
              {spec.type === 'float' && (
                <label className="jp-kubelab-check">
                  <input
                    type="checkbox"
                    checked={space.log}
                    onChange={event => set({ log: event.target.checked })}
                  />
                  <span>
                    <span className="jp-kubelab-sr-only">{name}: </span>log
                    scale
                  </span>
                </label>
              )}
            </>
          ) : (
            <label className="jp-kubelab-space-choices">
              <span className="jp-kubelab-sr-only">{name}: </span>values
              <input
                className="jp-mod-styled jp-kubelab-input"
                placeholder="e.g. 10, 20, 50"
                value={space.choices}
                onChange={event => set({ choices: event.target.value })}
              />
            </label>
          )}
        </div>
      )}
      <FieldError id={id} error={error} />
    </fieldset>
  );
}

/**
 * Tune a notebook: a search space per pipeline parameter (prefilled from its type
 * and value), the objective among its pipeline-metrics, the algorithm and the
 * trials. Each trial is a pipeline run, so steps upstream of the tuned parameters
 * come from the cache. A refused request shows the server's message next to the
 * field it names.
 */
export function TuneForm({
  client,
  path,
  onStarted
}: ITuneFormProps): JSX.Element {
  const { status, backend, setBackend, error, setError, busy, start } =
    useJobForm(client, onStarted);
  const [compiled, setCompiled] = React.useState<ICompileResult | null>(null);
  const [spaces, setSpaces] = React.useState<Record<string, ISpace>>({});
  const [metric, setMetric] = React.useState('');
  const [direction, setDirection] = React.useState<'minimize' | 'maximize'>(
    'minimize'
  );
  const [algorithm, setAlgorithm] = React.useState('tpe');
  const [trials, setTrials] = React.useState('8');
  const [parallel, setParallel] = React.useState('2');

  React.useEffect(() => {
    void client
      .compile(path)
      .then(result => {
        setCompiled(result);
        setSpaces(
          Object.fromEntries(
            Object.entries(result.parameters).map(([k, p]) => [
              k,
              defaultSpace(p)
            ])
          )
        );
        const first = result.metrics[0] ?? '';
        setMetric(m => m || first);
        setDirection(defaultDirection(first));
      })
      .catch(reason => setError(asApiError(reason)));
  }, [client, path]);

  const parameters = compiled?.parameters ?? {};
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const searchSpace: Record<string, unknown> = {};
    for (const [name, space] of Object.entries(spaces)) {
      if (!space.tune) {
        continue;
      }
      const type = parameters[name]?.type ?? 'str';
      searchSpace[name] =
        space.mode === 'range'
          ? {
              type:
                type === 'int'
                  ? 'randint'
                  : space.log
                    ? 'loguniform'
                    : 'uniform',
              min: type === 'int' ? whole(space.min) : numeric(space.min),
              max: type === 'int' ? whole(space.max) : numeric(space.max)
            }
          : { type: 'choice', values: parseChoices(space.choices, type) };
    }
    await start('tuning', {
      name: experimentName(path),
      template: { kind: 'notebook', path },
      search_space: searchSpace,
      objectives: [{ metric, direction }],
      algorithm: { name: algorithm },
      trial_config: {
        num_trials: whole(trials),
        parallel_trials: whole(parallel)
      }
    });
  };
  const rows = Object.keys(parameters).map(name => [`search_space.${name}`]);
  const spaceError =
    errorFor(error, ['search_space']) && !claimed(error, rows)
      ? error?.message
      : null;
  const unclaimed =
    error &&
    !spaceError &&
    !claimed(error, [...Object.values(FIELDS), ...rows]);
  return (
    <form
      className="jp-kubelab-job-form"
      data-testid="kubelab-tune-form"
      noValidate
      onSubmit={event => void submit(event)}
    >
      <h2>Tune {path}</h2>
      <p className="jp-kubelab-muted">
        Each trial runs the notebook as a pipeline with the trial's parameters;
        steps that do not depend on a tuned parameter run once and come from the
        cache for the other trials.
      </p>
      {unclaimed && (
        <div className="jp-kubelab-error" role="alert">
          {error.message}
        </div>
      )}
      <h3>Search space</h3>
      {compiled && Object.keys(parameters).length === 0 && (
        <p className="jp-kubelab-warning">
          This notebook has no pipeline-parameters cell: tag the cell that sets
          the values to tune <code>pipeline-parameters</code>.
        </p>
      )}
      {spaceError && (
        <div
          className="jp-kubelab-error"
          role="alert"
          data-testid="kubelab-tune-space-error"
        >
          {spaceError}
        </div>
      )}
      {Object.entries(parameters).map(([name, spec]) => (
        <SpaceRow
          key={name}
          name={name}
          spec={spec}
          space={spaces[name] ?? defaultSpace(spec)}
          error={errorFor(error, [`search_space.${name}`])}
          onChange={space => setSpaces(s => ({ ...s, [name]: space }))}
        />
      ))}
      <h3>Objective and trials</h3>
      <div className="jp-kubelab-form">
        <Field
          id="kubelab-tune-metric"
          label="Objective metric"
          hint={
            compiled?.metrics.length
              ? "From the notebook's pipeline-metrics cell."
              : 'A name the notebook prints as name=value (no pipeline-metrics cell).'
          }
          error={errorFor(error, FIELDS.objective)}
        >
          {compiled?.metrics.length ? (
            <select
              id="kubelab-tune-metric"
              className="jp-mod-styled"
              value={metric}
              onChange={event => {
                setMetric(event.target.value);
                setDirection(defaultDirection(event.target.value));
              }}
            >
              {compiled.metrics.map(m => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          ) : (
            <input
              id="kubelab-tune-metric"
              className="jp-mod-styled jp-kubelab-input"
              placeholder="e.g. loss"
              value={metric}
              onChange={event => setMetric(event.target.value)}
            />
          )}
        </Field>
        <Field id="kubelab-tune-direction" label="Direction">
          <select
            id="kubelab-tune-direction"
            className="jp-mod-styled"
            value={direction}
            onChange={event =>
              setDirection(event.target.value as 'minimize' | 'maximize')
            }
          >
            <option value="maximize">maximize</option>
            <option value="minimize">minimize</option>
          </select>
        </Field>
        <Field
          id="kubelab-tune-algorithm"
          label="Algorithm"
          error={errorFor(error, FIELDS.algorithm)}
        >
          <select
            id="kubelab-tune-algorithm"
            className="jp-mod-styled"
            value={algorithm}
            onChange={event => setAlgorithm(event.target.value)}
          >
            {ALGORITHMS.map(a => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </Field>
        <NumberField
          id="kubelab-tune-trials"
          label="Trials"
          min={1}
          error={errorFor(error, FIELDS.trials)}
          value={trials}
          onChange={setTrials}
        />
        <NumberField
          id="kubelab-tune-parallel"
          label="Parallel trials"
          min={1}
          value={parallel}
          onChange={setParallel}
        />
        <Field
          id="kubelab-tune-backend"
          label="Backend"
          error={errorFor(error, FIELDS.backend)}
        >
          <BackendSelect
            id="kubelab-tune-backend"
            status={status}
            value={backend}
            onChange={setBackend}
          />
        </Field>
      </div>
      <div className="jp-kubelab-actions jp-kubelab-form-actions">
        <Button
          type="submit"
          className="jp-mod-styled jp-mod-accept"
          data-testid="kubelab-tune-submit"
          disabled={busy || !compiled}
        >
          {busy ? 'Starting…' : 'Start tuning'}
        </Button>
      </div>
    </form>
  );
}

/** The Tune form in the main area, for one notebook. */
export class TuneFormView extends MainAreaWidget<ReactWidget> {
  constructor(props: ITuneFormProps) {
    super({ content: ReactWidget.create(<TuneForm {...props} />) });
    this.id = `kubelab-tune-${props.path.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    this.addClass('jp-kubelab-job-view');
    this.title.icon = kubelabIcon;
    this.title.label = `Tune ${props.path.split('/').pop()}`;
    this.title.closable = true;
    this.toolbar.hide();
  }
}
