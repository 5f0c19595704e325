import * as React from 'react';

import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';

import { PipelineModel } from '../model';
import { ErrorBoundary } from './ErrorBoundary';

/**
 * A widget that shows one part of the pipeline model and re-renders when it
 * changes. Each part has its own error boundary, so one part failing leaves the
 * others on screen.
 */
export class ModelView extends ReactWidget {
  constructor(
    readonly model: PipelineModel,
    private readonly _part: string,
    private readonly _render: (model: PipelineModel) => JSX.Element | null
  ) {
    super();
  }

  protected render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => (
          <ErrorBoundary part={this._part}>
            <Part render={this._render} model={this.model} />
          </ErrorBoundary>
        )}
      </UseSignal>
    );
  }
}

/** Renders inside the error boundary, so an error while rendering is caught too. */
function Part(props: {
  render: (model: PipelineModel) => JSX.Element | null;
  model: PipelineModel;
}): JSX.Element | null {
  return props.render(props.model);
}

/** The current time, refreshed every second while `ticking` (elapsed times). */
export function useNow(ticking: boolean): number {
  const [now, setNow] = React.useState(() => Date.now());
  React.useEffect(() => {
    if (!ticking) {
      return;
    }
    setNow(Date.now());
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [ticking]);
  return ticking ? now : Date.now();
}
