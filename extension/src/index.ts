import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, WidgetTracker } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { checkIcon, runIcon, tagIcon } from '@jupyterlab/ui-components';

import { IRun, KubelabClient } from './api';
import { EXAMPLE_NOTEBOOK } from './example';
import { kubelabIcon, pipelineIcon } from './icons';
import { PipelineModel } from './model';
import { RunNotifier } from './notify';
import { RunTracker } from './runs';
import { CellStepLabels } from './widgets/CellStepLabels';
import { CompareView } from './widgets/CompareView';
import { LineageView } from './widgets/LineageView';
import { GuideView } from './widgets/GuideView';
import { PipelineView } from './widgets/PipelineView';
import { SidebarPanel } from './widgets/SidebarPanel';

const PLUGIN_ID = 'kubelab:plugin';

export const CommandIDs = {
  openSidebar: 'kubelab:open-sidebar',
  openPipeline: 'kubelab:open-pipeline',
  runPipeline: 'kubelab:run-pipeline',
  validate: 'kubelab:validate',
  makeStep: 'kubelab:make-step',
  refreshRuns: 'kubelab:refresh-runs',
  toggleCellLabels: 'kubelab:toggle-cell-labels',
  openGuide: 'kubelab:open-guide',
  newExample: 'kubelab:new-example'
} as const;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'kubelab: Kubeflow-style pipelines, training, tuning and serving from JupyterLab.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer, ISettingRegistry, ILauncher],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    launcher: ILauncher | null
  ) => {
    const { commands, shell } = app;
    const client = new KubelabClient();
    const runs = new RunTracker(client);
    const model = new PipelineModel(client, runs, panel =>
      shell.activateById(panel.id)
    );
    const follow = () => model.setNotebook(notebooks.currentWidget ?? null);
    notebooks.currentChanged.connect(follow);
    follow();

    // -- Compare runs and lineage (issue 19): views of their own in the main area.
    const runLabel = (id: string) =>
      runs.runs.find(r => r.id === id)?.label || null;
    const openCompare = (refs: string[]) => {
      const view = new CompareView({ client, refs, label: runLabel });
      shell.add(view, 'main');
      shell.activateById(view.id);
    };
    const lineages = new Map<string, LineageView>();
    const openLineage = (ref: string, name: string) => {
      let view = lineages.get(ref);
      if (!view || view.isDisposed) {
        view = new LineageView({
          client,
          artifact: ref,
          name,
          label: runLabel
        });
        lineages.set(ref, view);
        shell.add(view, 'main');
      }
      shell.activateById(view.id);
    };

    // The pipeline view: one, following the active notebook like the sidebar.
    const views = new WidgetTracker<PipelineView>({
      namespace: 'kubelab-pipeline'
    });
    const openPipeline = (step?: string, showLog = false) => {
      let view = views.currentWidget;
      if (!view || view.isDisposed) {
        view = new PipelineView(model, openLineage);
        void views.add(view);
      }
      if (!view.isAttached) {
        const ref = model.notebook?.id;
        shell.add(view, 'main', ref ? { mode: 'split-right', ref } : {});
      }
      shell.activateById(view.id);
      if (step && showLog) {
        model.showLog(step);
      } else if (step) {
        model.selectStep(step);
      }
    };

    let guide: GuideView | null = null;
    const openGuide = () => {
      if (!guide || guide.isDisposed) {
        guide = new GuideView(
          () => void commands.execute(CommandIDs.newExample)
        );
      }
      if (!guide.isAttached) {
        shell.add(guide, 'main');
      }
      shell.activateById(guide.id);
    };

    const sidebar = new SidebarPanel({
      model,
      openPipeline,
      openGuide,
      openCompare
    });
    shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, sidebar.id);
    restorer?.restore(views, {
      command: CommandIDs.openPipeline,
      name: () => 'pipeline'
    });

    const labels = new CellStepLabels(model, step => {
      model.selectStep(step);
      if (!sidebar.isVisible) {
        shell.activateById(sidebar.id);
      }
    });

    new RunNotifier({
      tracker: runs,
      inSight: run =>
        run.path === model.path &&
        (sidebar.isVisible || (views.currentWidget?.isVisible ?? false)),
      show: (run: IRun) => void showRun(run)
    });
    const showRun = async (run: IRun) => {
      if (run.path) {
        await commands.execute('docmanager:open', { path: run.path });
      }
      shell.activateById(sidebar.id);
      model.selectRun(run.id);
    };

    const hasNotebook = () => notebooks.currentWidget !== null;
    const canRun = () =>
      hasNotebook() &&
      model.hasSteps &&
      model.compileError === null &&
      !model.busy;

    commands.addCommand(CommandIDs.openSidebar, {
      label: 'Open kubelab Sidebar',
      caption: 'Show the kubelab panel',
      icon: kubelabIcon,
      execute: () => {
        shell.activateById(sidebar.id);
        sidebar.focusFirstAction();
      }
    });
    commands.addCommand(CommandIDs.openPipeline, {
      label: 'Open Pipeline View',
      caption: "The notebook's pipeline: graph, step details and logs",
      icon: pipelineIcon,
      execute: args =>
        openPipeline((args.step as string | undefined) ?? undefined)
    });
    commands.addCommand(CommandIDs.runPipeline, {
      label: 'Run as Pipeline',
      caption: 'Save the notebook and run it as a pipeline',
      icon: runIcon,
      isEnabled: canRun,
      execute: () => {
        follow();
        return model.runPipeline();
      }
    });
    commands.addCommand(CommandIDs.validate, {
      label: 'Validate Pipeline',
      caption:
        'Run every step once here and check that each variable passed between steps survives',
      icon: checkIcon,
      isEnabled: () => hasNotebook() && model.hasSteps,
      execute: () => {
        shell.activateById(sidebar.id);
        return model.validate();
      }
    });
    commands.addCommand(CommandIDs.makeStep, {
      label: 'Make This Cell a Step',
      caption: 'Tag the active cell as the start of a pipeline step',
      icon: tagIcon,
      isEnabled: () => model.activeCell?.model.type === 'code',
      execute: () => {
        const name = model.makeActiveCellAStep();
        if (name) {
          model.selectStep(name);
          shell.activateById(sidebar.id);
        }
      }
    });
    commands.addCommand(CommandIDs.refreshRuns, {
      label: 'Refresh Runs',
      execute: () => runs.refresh()
    });
    commands.addCommand(CommandIDs.toggleCellLabels, {
      label: 'Show Step Labels on Cells',
      isToggled: () => labels.enabled,
      execute: () => {
        labels.enabled = !labels.enabled;
        void settings?.set('cellLabels', labels.enabled);
        commands.notifyCommandChanged(CommandIDs.toggleCellLabels);
      }
    });
    commands.addCommand(CommandIDs.openGuide, {
      label: 'Pipelines Guide',
      caption: 'How a notebook becomes a pipeline, with an example notebook',
      icon: kubelabIcon,
      execute: openGuide
    });
    commands.addCommand(CommandIDs.newExample, {
      label: 'New Example Pipeline Notebook',
      caption: 'A small notebook tagged as a pipeline, ready to run',
      icon: pipelineIcon,
      execute: async () => {
        const contents = app.serviceManager.contents;
        const created = await contents.newUntitled({
          path: '',
          type: 'notebook'
        });
        await contents.save(created.path, {
          type: 'notebook',
          format: 'json',
          content: EXAMPLE_NOTEBOOK
        });
        await commands.execute('docmanager:open', { path: created.path });
        shell.activateById(sidebar.id);
      }
    });
    // Toolbar buttons and menus ask again whenever what they depend on changes.
    model.changed.connect(() => {
      commands.notifyCommandChanged(CommandIDs.runPipeline);
      commands.notifyCommandChanged(CommandIDs.validate);
      commands.notifyCommandChanged(CommandIDs.makeStep);
    });

    for (const command of Object.values(CommandIDs)) {
      palette?.addItem({ command, category: 'kubelab' });
    }
    launcher?.add({
      command: CommandIDs.openGuide,
      category: 'kubelab',
      rank: 1
    });
    launcher?.add({
      command: CommandIDs.newExample,
      category: 'kubelab',
      rank: 2
    });

    let settings: ISettingRegistry.ISettings | null = null;
    let timer: number | undefined;
    const refresh = () => {
      void sidebar.refreshStatus();
      void runs.refresh();
    };
    const schedule = (seconds: number) => {
      window.clearInterval(timer);
      if (seconds > 0) {
        timer = window.setInterval(refresh, seconds * 1000);
      }
    };
    refresh();
    schedule(30);
    if (settingRegistry) {
      void settingRegistry.load(PLUGIN_ID).then(loaded => {
        settings = loaded;
        const apply = () => {
          schedule(loaded.get('statusRefreshSeconds').composite as number);
          labels.enabled = loaded.get('cellLabels').composite as boolean;
          commands.notifyCommandChanged(CommandIDs.toggleCellLabels);
        };
        apply();
        loaded.changed.connect(apply);
      });
    }
  }
};

export default plugin;
