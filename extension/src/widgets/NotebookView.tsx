import * as React from 'react';

import { NotebookPanel } from '@jupyterlab/notebook';
import { notebookIcon } from '@jupyterlab/ui-components';

export interface INotebookViewProps {
  notebook: NotebookPanel | null;
}

/** The notebook the kubelab views work on. */
export function NotebookView({ notebook }: INotebookViewProps): JSX.Element {
  if (!notebook) {
    return (
      <div className="jp-kubelab-notebook jp-kubelab-muted">
        No notebook open
      </div>
    );
  }
  return (
    <div className="jp-kubelab-notebook" data-testid="kubelab-notebook">
      <notebookIcon.react tag="span" className="jp-kubelab-notebook-icon" />
      <span className="jp-kubelab-notebook-name" title={notebook.context.path}>
        {notebook.title.label}
      </span>
    </div>
  );
}
