import * as React from 'react';

import { Button } from '@jupyterlab/ui-components';

import { IRunOutput, KubelabClient } from '../api';

export interface IStepOutputsProps {
  client: KubelabClient;
  runId: string;
  /** The run step (pipeline task) name. */
  task: string;
  /** Serve a model output; rejects with the server's message. */
  onServe: (output: IRunOutput) => Promise<void>;
}

/** `sklearn.ensemble._forest.RandomForestClassifier` → `RandomForestClassifier`. */
function shortType(type: string | null): string {
  return type ? (type.split('.').pop() ?? type) : '';
}

/**
 * The models a finished step gave (a scikit-learn or torch object the notebook saved,
 * a Model artifact), each with a Serve button that starts a model server for it.
 */
export function StepOutputs({
  client,
  runId,
  task,
  onServe
}: IStepOutputsProps): JSX.Element | null {
  const [outputs, setOutputs] = React.useState<IRunOutput[] | null>(null);
  const [busy, setBusy] = React.useState<string | null>(null);
  const [error, setError] = React.useState<{
    name: string;
    message: string;
  } | null>(null);
  React.useEffect(() => {
    let live = true;
    setOutputs(null);
    setError(null);
    client
      .runOutputs(runId, task)
      .then(read => live && setOutputs(read))
      .catch(() => live && setOutputs([]));
    return () => {
      live = false;
    };
  }, [client, runId, task]);
  const models = (outputs ?? []).filter(output => output.servable);
  if (models.length === 0) {
    return null;
  }
  const serve = async (output: IRunOutput) => {
    setBusy(output.name);
    setError(null);
    try {
      await onServe(output);
    } catch (reason) {
      setError({ name: output.name, message: (reason as Error).message });
    } finally {
      setBusy(null);
    }
  };
  return (
    <>
      <dt>Models</dt>
      <dd>
        <ul className="jp-kubelab-outputs" data-testid="kubelab-step-outputs">
          {models.map(output => (
            <li key={output.name} data-testid={`kubelab-output-${output.name}`}>
              <code>{output.name}</code>
              {output.servable && (
                <>
                  <span className="jp-kubelab-muted">
                    {' '}
                    {shortType(output.servable.type) || 'model'} ·{' '}
                    {output.servable.format}
                  </span>
                  <Button
                    className="jp-mod-styled"
                    data-testid={`kubelab-serve-${output.name}`}
                    title={`Start a model server for ${output.name} (Open Inference Protocol)`}
                    disabled={busy !== null}
                    onClick={() => void serve(output)}
                  >
                    {busy === output.name ? 'Starting…' : 'Serve'}
                  </Button>
                </>
              )}
              {error?.name === output.name && (
                <div className="jp-kubelab-error" role="alert">
                  {error.message}
                </div>
              )}
            </li>
          ))}
        </ul>
      </dd>
    </>
  );
}
