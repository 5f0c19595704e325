import * as React from 'react';

import { IStatus, JobKind, KubelabApiError, KubelabClient } from '../api';
import { asApiError } from './FormField';

export interface IJobForm {
  /** The server's status: its backends and the user's profile (null while loading). */
  status: IStatus | null;
  /** The chosen backend: the server's default until the user picks another. */
  backend: string;
  setBackend: (backend: string) => void;
  /** The last refusal, for the field it names (or the form) to show. */
  error: KubelabApiError | null;
  setError: (error: KubelabApiError | null) => void;
  busy: boolean;
  /** Create the job on the chosen backend; `onStarted` gets its id. */
  start: (kind: JobKind, spec: Record<string, unknown>) => Promise<void>;
}

/**
 * What every job form shares (Train, Tune): the server's status, the backend, and
 * starting the job with the server's refusal kept for the form to show.
 */
export function useJobForm(
  client: KubelabClient,
  onStarted: (jobId: string) => void
): IJobForm {
  const [status, setStatus] = React.useState<IStatus | null>(null);
  const [backend, setBackend] = React.useState('');
  const [error, setError] = React.useState<KubelabApiError | null>(null);
  const [busy, setBusy] = React.useState(false);

  React.useEffect(() => {
    void client
      .status()
      .then(read => {
        setStatus(read);
        setBackend(b => b || read.default_backend);
      })
      .catch(reason => setError(asApiError(reason)));
  }, [client]);

  const start = async (kind: JobKind, spec: Record<string, unknown>) => {
    setBusy(true);
    setError(null);
    try {
      const created = await client.createJob(kind, spec, backend || undefined);
      onStarted(created.id);
    } catch (reason) {
      setError(asApiError(reason));
    } finally {
      setBusy(false);
    }
  };
  return { status, backend, setBackend, error, setError, busy, start };
}
