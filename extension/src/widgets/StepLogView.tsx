import * as React from 'react';

import { closeIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';

import { KubelabApiError, KubelabClient } from '../api';

export interface IStepLogViewProps {
  client: KubelabClient;
  runId: string;
  /** The run step (pipeline task) name. */
  step: string;
  label: string;
  onClose: () => void;
}

const FOLLOW_MS = 1000;

/** A step's log, followed (appended every second) while the step runs. */
export function StepLogView({
  client,
  runId,
  step,
  label,
  onClose
}: IStepLogViewProps): JSX.Element {
  const [text, setText] = React.useState('');
  const [complete, setComplete] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  // Where the log can be read when the server cannot give it (the KFP UI).
  const [link, setLink] = React.useState<string | null>(null);
  const pre = React.useRef<HTMLPreElement>(null);

  React.useEffect(() => {
    let offset = 0;
    let stopped = false;
    let timer: number | undefined;
    setText('');
    setComplete(false);
    setError(null);
    setLink(null);
    const follow = async () => {
      try {
        // Read everything there is now, then wait for more.
        for (;;) {
          const chunk = await client.stepLogs(runId, step, offset);
          if (stopped) {
            return;
          }
          const grew = chunk.offset > offset;
          offset = chunk.offset;
          if (chunk.text) {
            setText(previous => previous + chunk.text);
          }
          if (chunk.complete) {
            setComplete(true);
            return;
          }
          if (!grew) {
            break;
          }
        }
      } catch (reason) {
        if (!stopped) {
          setError((reason as Error).message);
          const url =
            reason instanceof KubelabApiError ? reason.details.url : undefined;
          if (typeof url === 'string') {
            setLink(url);
            return; // nothing more will come from here
          }
        }
      }
      if (!stopped) {
        timer = window.setTimeout(() => void follow(), FOLLOW_MS);
      }
    };
    void follow();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [client, runId, step]);

  React.useEffect(() => {
    const node = pre.current;
    if (node && !complete) {
      node.scrollTop = node.scrollHeight;
    }
  }, [text, complete]);

  return (
    <div className="jp-kubelab-logs" data-testid="kubelab-step-logs">
      <div className="jp-kubelab-logs-header">
        <span>
          Logs · <strong>{label}</strong>
          {!complete && !error && (
            <span className="jp-kubelab-muted"> (following…)</span>
          )}
        </span>
        <ToolbarButtonComponent
          icon={closeIcon}
          tooltip="Close the log"
          onClick={onClose}
        />
      </div>
      {error && <div className="jp-kubelab-error">{error}</div>}
      {link && (
        <a
          className="jp-kubelab-link"
          href={link}
          target="_blank"
          rel="noopener noreferrer"
          data-testid="kubelab-log-link"
        >
          Read this log in Kubeflow Pipelines
        </a>
      )}
      <pre
        ref={pre}
        className="jp-kubelab-log-text"
        data-testid="kubelab-log-text"
      >
        {text || (complete ? '(empty log)' : '')}
      </pre>
    </div>
  );
}
