import * as React from 'react';

import { Button } from '@jupyterlab/ui-components';

import { IServerView } from '../api';
import { compactJson, formatValue } from '../format';
import { isActive } from '../runs';
import { JobStepLog } from './StepLogView';
import { IJobBodyProps } from './TrainingJobView';

const STATS_MS = 2000;

/** The server's view (stats, example request), read again while it serves. */
function useServerView(
  props: IJobBodyProps
): [IServerView | null, string | null, () => void] {
  const { client, job } = props;
  const [view, setView] = React.useState<IServerView | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [reads, setReads] = React.useState(0);
  const serving = isActive(job);
  React.useEffect(() => {
    let live = true;
    let timer: number | undefined;
    const read = async () => {
      try {
        const answer = await client.servingView(job.id);
        if (live) {
          setView(answer);
          setError(null);
        }
      } catch (reason) {
        if (live) {
          setError((reason as Error).message);
        }
      }
      if (live && serving) {
        timer = window.setTimeout(() => void read(), STATS_MS);
      }
    };
    void read();
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [client, job.id, job.state, serving, reads]);
  return [view, error, () => setReads(n => n + 1)];
}

/**
 * A model server: where it answers, its requests and latency, a Try it box with a
 * v2 request prefilled from the model's metadata, and its log.
 */
export function ServerJobView(props: IJobBodyProps): JSX.Element {
  const { client, job } = props;
  const [view, viewError, reread] = useServerView(props);
  const [request, setRequest] = React.useState<string | null>(null);
  const [response, setResponse] = React.useState<string | null>(null);
  const [sendError, setSendError] = React.useState<string | null>(null);
  const [sending, setSending] = React.useState(false);
  const example = view?.example ? JSON.stringify(view.example, null, 2) : null;
  const text = request ?? example ?? '';
  const model = view?.name ?? String(job.spec?.name ?? job.id);
  const source = job.spec?.model; // the artifact's URI when served from a run

  const send = async () => {
    setSending(true);
    setSendError(null);
    setResponse(null);
    try {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (error) {
        throw new Error(`The request is not JSON: ${(error as Error).message}`);
      }
      const answer = await client.infer(job.id, model, body);
      setResponse(compactJson(answer));
    } catch (error) {
      setSendError((error as Error).message);
    } finally {
      setSending(false);
      reread(); // the request count and latency moved
    }
  };
  const stats = view?.stats;
  return (
    <div className="jp-kubelab-job-body" data-testid="kubelab-server-view">
      {viewError && <div className="jp-kubelab-error">{viewError}</div>}
      <dl className="jp-kubelab-facts">
        <dt>Model</dt>
        <dd>
          <code>{model}</code>
          {view?.format ? ` · ${view.format}` : ''}
          {view?.model && (
            <span className="jp-kubelab-muted"> · {view.model}</span>
          )}
          {props.openLineage && typeof source === 'string' && (
            <>
              {' '}
              <button
                className="jp-kubelab-link"
                data-testid="kubelab-server-lineage"
                onClick={() => props.openLineage?.(source, model)}
              >
                Where it came from
              </button>
            </>
          )}
        </dd>
        <dt>Ready</dt>
        <dd
          data-testid="kubelab-server-ready"
          data-ready={view?.ready ?? false}
        >
          {view?.ready
            ? 'yes'
            : job.state === 'pending'
              ? 'loading the model…'
              : 'no'}
        </dd>
        {view?.url && (
          <>
            <dt>URL</dt>
            <dd>
              <code data-testid="kubelab-server-url">{view.url}</code>
            </dd>
          </>
        )}
        {view?.proxy_url && (
          <>
            <dt>Through Jupyter</dt>
            <dd>
              <code>{view.proxy_url}</code>
              <span className="jp-kubelab-muted">
                {' '}
                (v1, v2 and /metrics, with your Jupyter login)
              </span>
            </dd>
          </>
        )}
        <dt>Requests</dt>
        <dd data-testid="kubelab-server-stats">
          {stats
            ? `${stats.requests} (${stats.errors} errors)` +
              (stats.latency_ms
                ? ` · latency mean ${formatValue(stats.latency_ms.mean)} ms, p50 ${formatValue(stats.latency_ms.p50)} ms, p99 ${formatValue(stats.latency_ms.p99)} ms`
                : '')
            : 'none yet'}
        </dd>
      </dl>
      <h3>Try it</h3>
      <div className="jp-kubelab-try">
        <label htmlFor="kubelab-try-request">
          Request to <code>/v2/models/{model}/infer</code> (Open Inference
          Protocol v2, JSON)
        </label>
        <textarea
          id="kubelab-try-request"
          className="jp-mod-styled jp-kubelab-input jp-kubelab-code"
          rows={Math.min(14, Math.max(5, text.split('\n').length))}
          value={text}
          spellCheck={false}
          data-testid="kubelab-try-request"
          onChange={event => setRequest(event.target.value)}
        />
        <div className="jp-kubelab-actions">
          <Button
            className="jp-mod-styled jp-mod-accept"
            data-testid="kubelab-try-send"
            disabled={sending || !view?.ready || !text.trim()}
            onClick={() => void send()}
          >
            {sending ? 'Sending…' : 'Send'}
          </Button>
          {example && request !== null && request !== example && (
            <button
              className="jp-kubelab-link"
              onClick={() => setRequest(null)}
            >
              Reset to the example
            </button>
          )}
        </div>
        {sendError && (
          <div
            className="jp-kubelab-error"
            role="alert"
            data-testid="kubelab-try-error"
          >
            {sendError}
          </div>
        )}
        {response && (
          <pre
            className="jp-kubelab-try-response"
            data-testid="kubelab-try-response"
            aria-label="Response"
          >
            {response}
          </pre>
        )}
      </div>
      <JobStepLog
        client={client}
        job={job}
        step="server"
        label={`model server ${model}`}
      />
    </div>
  );
}
