import * as React from 'react';

import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';

import { IStatus, KubelabClient } from '../api';
import { kubelabIcon } from '../icons';
import { NotebookView } from './NotebookView';
import { StatusView } from './StatusView';

export interface ISidebarOptions {
  client: KubelabClient;
  tracker: INotebookTracker;
}

/**
 * The kubelab left-sidebar panel.
 *
 * It follows the active notebook through the notebook tracker and keeps a
 * fresh copy of the server status (identity, backends, profile).
 */
export class SidebarPanel extends ReactWidget {
  constructor(private readonly options: ISidebarOptions) {
    super();
    this.id = 'kubelab-sidebar';
    this.title.icon = kubelabIcon;
    this.title.caption = 'kubelab';
    this.addClass('jp-kubelab-sidebar');
  }

  /** Re-read the server status; called on start and on a timer. */
  async refreshStatus(): Promise<void> {
    try {
      this._status = await this.options.client.status();
      this._statusError = null;
    } catch (error) {
      this._statusError = (error as Error).message;
    }
    this.update();
  }

  protected render(): JSX.Element {
    const { tracker } = this.options;
    return (
      <div className="jp-kubelab-panel">
        <header className="jp-kubelab-header">
          <kubelabIcon.react tag="span" className="jp-kubelab-header-icon" />
          <h2>kubelab</h2>
        </header>
        <section className="jp-kubelab-section">
          <StatusView status={this._status} error={this._statusError} />
        </section>
        <section className="jp-kubelab-section">
          <UseSignal
            signal={tracker.currentChanged}
            initialArgs={tracker.currentWidget}
          >
            {(_, current) => (
              <NotebookView notebook={(current as NotebookPanel) ?? null} />
            )}
          </UseSignal>
        </section>
      </div>
    );
  }

  private _status: IStatus | null = null;
  private _statusError: string | null = null;
}
