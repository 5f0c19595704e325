import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { KubelabClient } from './api';
import { kubelabIcon } from './icons';
import { SidebarPanel } from './widgets/SidebarPanel';

const PLUGIN_ID = 'kubelab:plugin';

export const CommandIDs = {
  openSidebar: 'kubelab:open-sidebar'
} as const;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'kubelab: Kubeflow-style pipelines, training, tuning and serving from JupyterLab.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    const client = new KubelabClient();
    const sidebar = new SidebarPanel({ client, tracker });
    app.shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, sidebar.id);

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: 'kubelab: Open Sidebar',
      caption: 'Show the kubelab panel',
      icon: kubelabIcon,
      execute: () => app.shell.activateById(sidebar.id)
    });
    palette?.addItem({ command: CommandIDs.openSidebar, category: 'kubelab' });

    let timer: number | undefined;
    const schedule = (seconds: number) => {
      window.clearInterval(timer);
      if (seconds > 0) {
        timer = window.setInterval(
          () => void sidebar.refreshStatus(),
          seconds * 1000
        );
      }
    };
    void sidebar.refreshStatus();
    schedule(30);
    if (settingRegistry) {
      void settingRegistry.load(PLUGIN_ID).then(settings => {
        const apply = () =>
          schedule(settings.get('statusRefreshSeconds').composite as number);
        apply();
        settings.changed.connect(apply);
      });
    }
  }
};

export default plugin;
