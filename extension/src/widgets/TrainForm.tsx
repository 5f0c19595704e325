import * as React from 'react';

import { MainAreaWidget } from '@jupyterlab/apputils';
import { Button, ReactWidget } from '@jupyterlab/ui-components';

import {
  IParameterSpec,
  IStatus,
  KubelabApiError,
  KubelabClient
} from '../api';
import { kubelabIcon } from '../icons';
import { claimed, errorFor, Field, NumberField, whole } from './FormField';
import { ParametersForm } from './ParametersForm';
import { useJobForm } from './useJobForm';

export interface ITrainFormProps {
  client: KubelabClient;
  /** The notebook or `.py` file to train with, relative to the Jupyter root. */
  path: string;
  onStarted: (jobId: string) => void;
}

const FIELDS = {
  path: ['path'],
  nodes: ['num_nodes', 'nodes'],
  nproc: ['nproc_per_node'],
  gpus: ['gpus_per_node', 'resources_per_node'],
  backend: ['backend'],
  parameters: ['parameters']
};

/** `name=value` lines of a script's arguments. */
function parseArguments(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (line.trim() && at > 0) {
      out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    } else if (line.trim()) {
      out[line.trim()] = '';
    }
  }
  return out;
}

/** The GPUs per node the user's profile allows, and how to say it. */
export function gpuAllowance(status: IStatus | null): {
  max: number;
  hint: string;
} {
  const profile = status?.profile;
  const gpu = profile?.gpu as { count?: number } | null | undefined;
  const count = Number(gpu?.count ?? 0);
  const name = profile?.display_name ?? profile?.slug;
  if (!profile) {
    return {
      max: 0,
      hint: 'No profile says you may use GPUs here: 0 GPUs, the job runs on the CPU (gloo).'
    };
  }
  return count > 0
    ? {
        max: count,
        hint: `Your profile ${name} allows up to ${count} per node.`
      }
    : {
        max: 0,
        hint: `Your profile ${name} has no GPUs: the job runs on the CPU.`
      };
}

/** The backends a job can go to, unavailable ones shown but not selectable. */
export function BackendSelect(props: {
  id: string;
  status: IStatus | null;
  value: string;
  onChange: (value: string) => void;
}): JSX.Element {
  const backends = props.status?.backends ?? [
    { name: 'local', available: true }
  ];
  return (
    <select
      id={props.id}
      className="jp-mod-styled"
      value={props.value}
      onChange={event => props.onChange(event.target.value)}
    >
      {backends.map(b => (
        <option key={b.name} value={b.name} disabled={!b.available}>
          {b.name}
          {b.available
            ? ''
            : ` (unavailable${b.reason ? `: ${b.reason}` : ''})`}
        </option>
      ))}
    </select>
  );
}

/**
 * Train a notebook or a script as a distributed job: nodes, processes per node,
 * GPUs per node (up to what the profile allows), backend and parameters. A refused
 * request shows the server's message next to the field it names.
 */
export function TrainForm({
  client,
  path,
  onStarted
}: ITrainFormProps): JSX.Element {
  const notebook = path.endsWith('.ipynb');
  const { status, backend, setBackend, error, setError, busy, start } =
    useJobForm(client, onStarted);
  const [parameters, setParameters] = React.useState<
    Record<string, IParameterSpec>
  >({});
  const [values, setValues] = React.useState<Record<string, unknown>>({});
  const [args, setArgs] = React.useState('');
  const [nodes, setNodes] = React.useState('2');
  const [nproc, setNproc] = React.useState('1');
  const [gpus, setGpus] = React.useState('0');

  React.useEffect(() => {
    if (notebook) {
      void client
        .compile(path)
        .then(compiled => {
          setParameters(compiled.parameters);
          setValues(
            Object.fromEntries(
              Object.entries(compiled.parameters).map(([k, p]) => [
                k,
                p.default
              ])
            )
          );
        })
        .catch(() => undefined); // a notebook that does not compile has no parameters
    }
  }, [client, path]);

  const allowance = gpuAllowance(status);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const wanted = whole(gpus);
    if (typeof wanted === 'number' && wanted > allowance.max) {
      // Without a profile the server would not refuse: the limit is the form's.
      setError(
        new KubelabApiError(
          `${wanted} GPU(s) per node asked; ${allowance.hint}`,
          400,
          { field: 'gpus_per_node' }
        )
      );
      return;
    }
    const changed = notebook
      ? Object.fromEntries(
          Object.entries(values).filter(
            ([k, v]) =>
              JSON.stringify(v) !== JSON.stringify(parameters[k]?.default)
          )
        )
      : parseArguments(args);
    await start('training', {
      path,
      num_nodes: whole(nodes),
      nproc_per_node: whole(nproc),
      gpus_per_node: whole(gpus),
      parameters: changed
    });
  };
  const unclaimed = error && !claimed(error, Object.values(FIELDS));
  return (
    <form
      className="jp-kubelab-job-form"
      data-testid="kubelab-train-form"
      noValidate
      onSubmit={event => void submit(event)}
    >
      <h2>Train {path}</h2>
      <p className="jp-kubelab-muted">
        Every process runs{' '}
        {notebook
          ? "the notebook's code cells (not those tagged skip)"
          : 'the script'}{' '}
        with torch.distributed's environment (RANK, WORLD_SIZE, MASTER_ADDR…).
        Report metrics with <code>kubelab.workloads.report(step, loss=…)</code>.
      </p>
      {unclaimed && (
        <div className="jp-kubelab-error" role="alert">
          {error.message}
        </div>
      )}
      <div className="jp-kubelab-form">
        <Field
          id="kubelab-train-path"
          label="File"
          error={errorFor(error, FIELDS.path)}
        >
          <input
            id="kubelab-train-path"
            className="jp-mod-styled jp-kubelab-input"
            value={path}
            readOnly
          />
        </Field>
        <NumberField
          id="kubelab-train-nodes"
          label="Nodes"
          min={1}
          error={errorFor(error, FIELDS.nodes)}
          value={nodes}
          onChange={setNodes}
        />
        <NumberField
          id="kubelab-train-nproc"
          label="Processes per node"
          min={1}
          error={errorFor(error, FIELDS.nproc)}
          value={nproc}
          onChange={setNproc}
        />
        <NumberField
          id="kubelab-train-gpus"
          label="GPUs per node"
          min={0}
          max={allowance.max}
          hint={allowance.hint}
          error={errorFor(error, FIELDS.gpus)}
          value={gpus}
          onChange={setGpus}
        />
        <Field
          id="kubelab-train-backend"
          label="Backend"
          error={errorFor(error, FIELDS.backend)}
        >
          <BackendSelect
            id="kubelab-train-backend"
            status={status}
            value={backend}
            onChange={setBackend}
          />
        </Field>
        {!notebook && (
          <Field
            id="kubelab-train-args"
            label="Arguments"
            hint="One name=value per line, passed as --name value."
            error={errorFor(error, FIELDS.parameters)}
          >
            <textarea
              id="kubelab-train-args"
              className="jp-mod-styled jp-kubelab-input"
              rows={3}
              placeholder="e.g. epochs=3"
              value={args}
              onChange={event => setArgs(event.target.value)}
            />
          </Field>
        )}
      </div>
      {notebook && Object.keys(parameters).length > 0 && (
        <fieldset className="jp-kubelab-fieldset">
          <legend>Parameters</legend>
          {errorFor(error, FIELDS.parameters) && (
            <div className="jp-kubelab-error" role="alert">
              {error?.message}
            </div>
          )}
          <ParametersForm
            idPrefix="kubelab-train-param"
            parameters={parameters}
            values={values}
            onChange={(name, value) =>
              setValues(v => ({ ...v, [name]: value }))
            }
          />
        </fieldset>
      )}
      <div className="jp-kubelab-actions jp-kubelab-form-actions">
        <Button
          type="submit"
          className="jp-mod-styled jp-mod-accept"
          data-testid="kubelab-train-submit"
          disabled={busy}
        >
          {busy ? 'Starting…' : 'Start training'}
        </Button>
      </div>
    </form>
  );
}

/** The Train form in the main area, for one file. */
export class TrainFormView extends MainAreaWidget<ReactWidget> {
  constructor(props: ITrainFormProps) {
    super({ content: ReactWidget.create(<TrainForm {...props} />) });
    this.id = `kubelab-train-${props.path.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    this.addClass('jp-kubelab-job-view');
    this.title.icon = kubelabIcon;
    this.title.label = `Train ${props.path.split('/').pop()}`;
    this.title.closable = true;
    this.toolbar.hide();
  }
}
