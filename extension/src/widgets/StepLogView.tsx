import * as React from 'react';

import { IJob, ILogChunk, KubelabApiError, KubelabClient } from '../api';
import { foldLog } from '../format';

export interface IStepLogViewProps {
  /** Which log this is (a run's step, a job's node or trial): a new one starts over. */
  source: string;
  /** Read the log from byte `offset` (the runs' or the jobs' log API). */
  read: (offset: number) => Promise<ILogChunk>;
  /** What the log is of, e.g. "train_forest in #8". */
  label: string;
  /** Changes when the user asks to see this log: bring it into view once it has text. */
  reveal?: number;
}

const FOLLOW_MS = 1000;

/**
 * A step's log (of a run, or of a job: a node, a trial, a model server), followed
 * (appended every second) while the step runs. Tracebacks
 * start at the user's frames: kubelab's own frames fold into one line that opens
 * on demand, and server paths are shortened.
 */
export function StepLogView({
  source,
  read,
  label,
  reveal = 0
}: IStepLogViewProps): JSX.Element {
  const [text, setText] = React.useState('');
  const [complete, setComplete] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  // Where the log can be read when this server cannot give it (the KFP UI).
  const [link, setLink] = React.useState<string | null>(null);
  const box = React.useRef<HTMLDivElement>(null);
  const section = React.useRef<HTMLElement>(null);
  const revealing = React.useRef(false);
  const reader = React.useRef(read);
  reader.current = read;

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
          const chunk = await reader.current(offset);
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
          setLink(typeof url === 'string' ? url : null);
        }
        return;
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
  }, [source]);

  React.useEffect(() => {
    revealing.current = reveal > 0;
  }, [reveal]);

  React.useEffect(() => {
    const node = box.current;
    if (node && !complete) {
      node.scrollTop = node.scrollHeight;
    }
    // Asked for: show the log once there is something to show, and focus it.
    if (revealing.current && (text || complete)) {
      revealing.current = false;
      section.current?.scrollIntoView({ block: 'start' });
      node?.focus({ preventScroll: true });
    }
  }, [text, complete, reveal]);

  const blocks = React.useMemo(() => foldLog(text.replace(/\n$/, '')), [text]);
  return (
    <section
      className="jp-kubelab-logs"
      data-testid="kubelab-step-logs"
      aria-label={`Log of ${label}`}
    >
      <div className="jp-kubelab-logs-header">
        Log · <strong>{label}</strong>
        {!complete && !error && (
          <span className="jp-kubelab-muted"> (following…)</span>
        )}
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
      <div
        ref={box}
        className="jp-kubelab-log-text"
        data-testid="kubelab-log-text"
      >
        {text === '' && complete && (
          <span className="jp-kubelab-muted">(empty log)</span>
        )}
        {blocks.map((block, i) =>
          block.kind === 'frames' ? (
            <details key={i} className="jp-kubelab-log-fold">
              <summary>
                {block.lines.filter(l => l.startsWith('  File')).length} kubelab
                frames
              </summary>
              <pre>{block.lines.join('\n')}</pre>
            </details>
          ) : (
            <pre
              key={i}
              className={
                block.kind === 'kubelab' ? 'jp-kubelab-log-kubelab' : undefined
              }
            >
              {block.lines.join('\n')}
            </pre>
          )
        )}
      </div>
    </section>
  );
}

/** The log of a job's step (a node, a trial, the model server), followed. */
export function JobStepLog(props: {
  client: KubelabClient;
  job: IJob;
  step: string;
  label: string;
}): JSX.Element {
  const { client, job, step } = props;
  return (
    <StepLogView
      key={`${job.id}/${step}`}
      source={`${job.id}/${step}`}
      read={offset => client.jobLogs(job.id, step, offset)}
      label={props.label}
    />
  );
}

/** A table row's "Log" button: shows that row's log below the table. */
export function LogButton(props: {
  shown: boolean;
  onShow: () => void;
}): JSX.Element {
  return (
    <button
      className="jp-kubelab-link"
      aria-pressed={props.shown}
      onClick={props.onShow}
    >
      Log
    </button>
  );
}
