import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  showErrorMessage,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import {
  checkIcon,
  refreshIcon,
  runIcon,
  tagIcon,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { IJob, IRun, IRunOutput, KubelabClient } from './api';
import { EXAMPLE_NOTEBOOK } from './example';
import { kubelabIcon, pipelineIcon } from './icons';
import { JobTracker } from './jobs';
import { LineageKey } from './lineage';
import { PipelineModel } from './model';
import { JobNotifier, RunNotifier } from './notify';
import { RunTracker } from './runs';
import { CellStepLabels } from './widgets/CellStepLabels';
import { CompareView } from './widgets/CompareView';
import { LineageView } from './widgets/LineageView';
import { GuideView } from './widgets/GuideView';
import { JobsPanel } from './widgets/JobsView';
import { JobView } from './widgets/JobView';
import { PipelineView } from './widgets/PipelineView';
import { section, SidebarPanel } from './widgets/SidebarPanel';
import { TrainFormView } from './widgets/TrainForm';
import { TuneFormView } from './widgets/TuneForm';

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
  newExample: 'kubelab:new-example',
  train: 'kubelab:train',
  tune: 'kubelab:tune',
  refreshJobs: 'kubelab:refresh-jobs',
  openJob: 'kubelab:open-job'
} as const;

/** A notebook variable's name as a model name (`/v2/models/{name}`, a DNS label). */
function modelName(variable: string): string {
  const name = variable
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+|-+$/g, '')
    .slice(0, 45);
  return name || 'model';
}

/** The file of a document widget (a notebook, a script), if it has one. */
function documentPath(widget: Widget | null): string | null {
  const context = (widget as { context?: { path?: unknown } } | null)?.context;
  return typeof context?.path === 'string' ? context.path : null;
}

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
    const openLineage = (
      artifact: string,
      name: string,
      by: LineageKey = 'ref'
    ) => {
      const key = `${by}:${artifact}`;
      let view = lineages.get(key);
      if (!view || view.isDisposed) {
        view = new LineageView({
          client,
          artifact,
          by,
          name,
          label: runLabel
        });
        lineages.set(key, view);
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
        view = new PipelineView(model, openLineage, output =>
          serveOutput(output)
        );
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

    // Jobs: the sidebar's section and one view per job in the main area.
    const jobs = new JobTracker(client);
    const jobViews = new Map<string, JobView>();
    const openJob = (job: IJob) => {
      let view = jobViews.get(job.id);
      if (!view || view.isDisposed) {
        view = new JobView(client, jobs, job, (uri, name) =>
          openLineage(uri, name, 'uri')
        );
        jobViews.set(job.id, view);
        view.disposed.connect(() => jobViews.delete(job.id));
      }
      if (!view.isAttached) {
        shell.add(view, 'main');
      }
      shell.activateById(view.id);
    };
    const openJobById = async (id: string) => {
      await jobs.refresh();
      const job = jobs.job(id) ?? (await client.getJob(id));
      openJob(job);
    };
    new JobNotifier({
      tracker: jobs,
      inSight: job => jobViews.get(job.id)?.isVisible ?? false,
      show: openJob
    });
    /** Serve a model a run's step gave, and show its server. */
    const serveOutput = async (output: IRunOutput) => {
      const created = await client.createJob('serving', {
        name: modelName(output.name),
        model: output.uri
      });
      await openJobById(created.id);
    };
    /** The notebook or script a Train/Tune command acts on. */
    const targetPath = (args: { path?: unknown }, suffixes: string[]) => {
      const candidates = [
        typeof args.path === 'string' ? args.path : null,
        documentPath(shell.currentWidget),
        notebooks.currentWidget?.context.path ?? null
      ];
      return (
        candidates.find(p => p && suffixes.some(s => p.endsWith(s))) ?? null
      );
    };
    const forms = new Map<string, Widget>();
    const openForm = (key: string, make: () => Widget) => {
      let form = forms.get(key);
      if (!form || form.isDisposed) {
        form = make();
        forms.set(key, form);
      }
      if (!form.isAttached) {
        shell.add(form, 'main');
      }
      shell.activateById(form.id);
    };
    const started = (key: string) => (id: string) => {
      forms.get(key)?.dispose();
      void openJobById(id);
    };
    const button = (label: string, tooltip: string, command: string) => {
      const widget = new ToolbarButton({
        label,
        tooltip,
        onClick: () => void commands.execute(command)
      });
      widget.node.dataset.testid = `kubelab-jobs-${label.toLowerCase()}`;
      return widget;
    };
    const refreshJobsButton = new ToolbarButton({
      icon: refreshIcon,
      tooltip: 'Refresh the jobs',
      onClick: () => void jobs.refresh()
    });
    refreshJobsButton.node.dataset.testid = 'kubelab-refresh-jobs';
    sidebar.addSection(
      section('kubelab-jobs-section', 'Jobs', new JobsPanel(jobs, openJob), [
        button(
          'Train',
          'Train the active notebook or script as a distributed job',
          CommandIDs.train
        ),
        button(
          'Tune',
          "Tune the active notebook's parameters (each trial a pipeline run)",
          CommandIDs.tune
        ),
        refreshJobsButton
      ])
    );
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
    commands.addCommand(CommandIDs.train, {
      label: 'Train as a Distributed Job…',
      caption:
        'Run the active notebook or .py file on several processes (torch.distributed), here or on the cluster',
      icon: runIcon,
      execute: args => {
        const path = targetPath(args, ['.ipynb', '.py']);
        if (!path) {
          void showErrorMessage(
            'Nothing to train',
            'Open a notebook or a .py file first: the Train form trains the active one.'
          );
          return;
        }
        const key = `train:${path}`;
        openForm(
          key,
          () => new TrainFormView({ client, path, onStarted: started(key) })
        );
      }
    });
    commands.addCommand(CommandIDs.tune, {
      label: 'Tune Notebook Parameters…',
      caption:
        "Search the active notebook's pipeline-parameters for the best value of one of its metrics",
      icon: kubelabIcon,
      execute: args => {
        const path = targetPath(args, ['.ipynb']);
        if (!path) {
          void showErrorMessage(
            'Nothing to tune',
            'Open a notebook with a pipeline-parameters cell first: the Tune form tunes the active one.'
          );
          return;
        }
        const key = `tune:${path}`;
        openForm(
          key,
          () => new TuneFormView({ client, path, onStarted: started(key) })
        );
      }
    });
    commands.addCommand(CommandIDs.refreshJobs, {
      label: 'Refresh Jobs',
      execute: () => jobs.refresh()
    });
    commands.addCommand(CommandIDs.openJob, {
      label: 'Open Job',
      execute: args => openJobById(String(args.id))
    });
    // Toolbar buttons and menus ask again whenever what they depend on changes.
    model.changed.connect(() => {
      commands.notifyCommandChanged(CommandIDs.runPipeline);
      commands.notifyCommandChanged(CommandIDs.validate);
      commands.notifyCommandChanged(CommandIDs.makeStep);
    });

    for (const command of Object.values(CommandIDs)) {
      if (command === CommandIDs.openJob) {
        continue; // needs a job id: the Jobs section opens jobs
      }
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
      void jobs.refresh();
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
