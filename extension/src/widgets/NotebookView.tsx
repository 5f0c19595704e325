import * as React from 'react';

import { NotebookPanel } from '@jupyterlab/notebook';

export interface INotebookViewProps {
  notebook: NotebookPanel | null;
}

/** The notebook the sidebar is working on, or a hint to open one. */
export function NotebookView({ notebook }: INotebookViewProps): JSX.Element {
  if (!notebook) {
    return (
      <div className="jp-kubelab-empty" data-testid="kubelab-empty">
        <p>Open a notebook to turn its cells into pipeline steps.</p>
      </div>
    );
  }
  return (
    <div className="jp-kubelab-notebook" data-testid="kubelab-notebook">
      <span className="jp-kubelab-notebook-name" title={notebook.context.path}>
        {notebook.title.label}
      </span>
    </div>
  );
}
