import * as React from 'react';

import {
  PanelWithToolbar,
  refreshIcon,
  SidePanel,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { AccordionPanel, Widget } from '@lumino/widgets';

import { IStatus } from '../api';
import { kubelabIcon, pipelineIcon } from '../icons';
import { PipelineModel } from '../model';
import { isActive } from '../runs';
import { CellStepEditor } from './CellStepEditor';
import { ModelView, useNow } from './ModelView';
import { NotebookView } from './NotebookView';
import { PipelineSummary } from './PipelineSummary';
import { RunsView } from './RunsView';
import { StatusView } from './StatusView';

export interface ISidebarOptions {
  model: PipelineModel;
  /** Open the pipeline view, showing `step` (and its log) when given. */
  openPipeline: (step?: string, showLog?: boolean) => void;
  openGuide: () => void;
  /** Open "Compare runs" for the runs ticked in the runs list. */
  openCompare?: (ids: string[]) => void;
}

/** A titled part of the sidebar, with buttons in its title bar. */
export function section(
  id: string,
  label: string,
  content: Widget,
  buttons: ToolbarButton[] = []
): PanelWithToolbar {
  const panel = new PanelWithToolbar();
  panel.id = id;
  panel.title.label = label;
  panel.addClass('jp-kubelab-section');
  content.addClass('jp-kubelab-section-content');
  panel.addWidget(content);
  buttons.forEach((button, i) => panel.toolbar.addItem(`${id}-${i}`, button));
  return panel;
}

function RunsPart({
  model,
  onCompare
}: {
  model: PipelineModel;
  onCompare?: (ids: string[]) => void;
}): JSX.Element | null {
  const now = useNow(model.runs.some(isActive));
  if (!model.notebook) {
    return null;
  }
  return (
    <>
      {model.runsError && (
        <div className="jp-kubelab-error" role="alert">
          {model.runsError}
        </div>
      )}
      {model.runsWarning && (
        <div className="jp-kubelab-warning" data-testid="kubelab-runs-warning">
          {model.runsWarning}
        </div>
      )}
      <RunsView
        runs={model.runs}
        selected={model.selectedRun}
        busy={model.busy}
        now={now}
        onSelect={id => model.selectRun(id)}
        onCancel={id => void model.cancel(id)}
        onRerun={id => void model.rerun(id)}
        onCompare={onCompare}
      />
    </>
  );
}

const CONTINUES: Record<string, string> = {
  imports: 'Part of the imports above',
  functions: 'Part of the functions above',
  'pipeline-parameters': 'Part of the parameters above',
  'pipeline-metrics': 'Part of the metrics above',
  skip: 'Skipped, as the cell above'
};

function CellPart({ model }: { model: PipelineModel }): JSX.Element | null {
  if (!model.notebook) {
    return null;
  }
  const index = model.activeCellIndex;
  const role = model.cellRole(index);
  const steps = model.compiled?.steps ?? [];
  const startsStep = steps.some(s => s.cells[0] === index);
  // What an untagged cell does: continue whatever the compiler put it in.
  const continues = !role
    ? 'No tag'
    : role.role === 'step'
      ? startsStep
        ? 'Part of the previous step'
        : `Part of step ${role.step}`
      : (CONTINUES[role.role] ?? 'Part of the previous step');
  return (
    <CellStepEditor
      cell={model.activeCell}
      index={index}
      steps={steps.map(s => ({ name: s.name, firstCell: s.cells[0] ?? 0 }))}
      continues={continues}
      edges={model.compiled?.edges ?? []}
    />
  );
}

/**
 * The kubelab left-sidebar panel: the active notebook as a pipeline, in sections
 * as JupyterLab's own sidebars have them (collapsible, resizable, with buttons in
 * their title bars): Pipeline (run it, parameters, steps), Runs, Active cell.
 * Later parts of kubelab (jobs) add their sections below with `addSection`.
 */
export class SidebarPanel extends SidePanel {
  constructor(private readonly options: ISidebarOptions) {
    super();
    this.id = 'kubelab-sidebar';
    this.title.icon = kubelabIcon;
    this.title.caption = 'kubelab';
    this.addClass('jp-kubelab-sidebar');
    const { model } = options;

    this._headerView = new HeaderView(model, () => this._status);
    this.header.addWidget(this._headerView);

    const openPipeline = new ToolbarButton({
      icon: pipelineIcon,
      tooltip: 'Open the pipeline view (graph, step details, logs)',
      onClick: () => options.openPipeline()
    });
    openPipeline.node.dataset.testid = 'kubelab-open-pipeline';
    this._pipeline = section(
      'kubelab-pipeline-section',
      'Pipeline',
      new ModelView(model, 'the pipeline', m => (
        <PipelineSummary
          model={m}
          onShowStep={step => options.openPipeline(step, true)}
          onOpenGuide={options.openGuide}
        />
      )),
      [openPipeline]
    );
    const refresh = new ToolbarButton({
      icon: refreshIcon,
      tooltip: 'Refresh the runs of this notebook',
      onClick: () => void model.refreshRuns()
    });
    refresh.node.dataset.testid = 'kubelab-refresh-runs';
    this._runs = section(
      'kubelab-runs-section',
      'Runs',
      new ModelView(model, 'the runs', m => (
        <RunsPart model={m} onCompare={options.openCompare} />
      )),
      [refresh]
    );
    this._cell = section(
      'kubelab-cell-section',
      'Active cell',
      new ModelView(model, 'the active cell', m => <CellPart model={m} />)
    );
    this.addWidget(this._pipeline);
    this.addWidget(this._runs);
    this.addWidget(this._cell);
    model.changed.connect(this._arrange, this);
    this._arrange();
  }

  /**
   * Add a section at the bottom (jobs), below the active cell: a notebook's own
   * sections keep their place (the cell editor near the top of a new notebook).
   */
  addSection(panel: PanelWithToolbar): void {
    this.addWidget(panel);
    this._extra.push(panel);
    this._idle = null;
    this._arrange();
  }

  /** Re-read the server status; called on start and on a timer. */
  async refreshStatus(): Promise<void> {
    try {
      this._status = {
        status: await this.options.model.client.status(),
        error: null
      };
    } catch (error) {
      this._status = {
        status: this._status.status,
        error: (error as Error).message
      };
    }
    this._headerView.update();
  }

  /**
   * Put the focus on what one does here (Run as pipeline, or the first section),
   * for people who opened the sidebar from the keyboard.
   */
  focusFirstAction(): void {
    requestAnimationFrame(() => {
      const target =
        this.node.querySelector<HTMLElement>(
          '[data-testid=kubelab-run-button]:not(:disabled)'
        ) ?? this.node.querySelector<HTMLElement>('.jp-AccordionPanel-title');
      target?.focus();
    });
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._applySizes();
  }

  dispose(): void {
    if (!this.isDisposed) {
      this.options.model.changed.disconnect(this._arrange, this);
    }
    super.dispose();
  }

  /**
   * A notebook without steps needs the cell editor near the top, and has no runs to
   * show: the runs section steps aside until there is something in it.
   */
  private _arrange(): void {
    const { model } = this.options;
    const idle =
      model.notebook !== null && model.empty && model.runs.length === 0;
    if (idle === this._idle) {
      return;
    }
    this._idle = idle;
    this._runs.setHidden(idle);
    // Shares of the height; sections added later (jobs) share the last 15%.
    const extra = this._extra.length ? 0.15 : 0;
    const share = new Map<Widget, number>([
      [this._pipeline, idle ? 0.45 : 0.6 - extra / 3],
      [this._runs, idle ? 0 : 0.2 - extra / 3],
      [this._cell, idle ? 0.55 - extra : 0.2 - extra / 3]
    ]);
    this._extra.forEach(w => share.set(w, extra / this._extra.length));
    this._sizes = this.widgets.map(w => share.get(w) ?? 0);
    this._applySizes();
  }

  /** Sections' share of the height; only meaningful once the panel has one. */
  private _applySizes(): void {
    const sizes = this._sizes;
    if (!sizes || !this.isVisible) {
      return;
    }
    requestAnimationFrame(() => {
      if (
        this.isVisible &&
        this.node.clientHeight > 0 &&
        this._sizes === sizes
      ) {
        (this.content as AccordionPanel).setRelativeSizes(sizes);
        this._sizes = null;
      }
    });
  }

  private _headerView: HeaderView;
  private _pipeline: PanelWithToolbar;
  private _runs: PanelWithToolbar;
  private _cell: PanelWithToolbar;
  private _extra: PanelWithToolbar[] = [];
  private _idle: boolean | null = null;
  private _sizes: number[] | null = null;
  private _status: { status: IStatus | null; error: string | null } = {
    status: null,
    error: null
  };
}

/** The sidebar's header: what it is, which notebook, who and where. */
class HeaderView extends ModelView {
  constructor(
    model: PipelineModel,
    status: () => { status: IStatus | null; error: string | null }
  ) {
    super(model, 'the header', m => (
      <div className="jp-kubelab-header">
        <div className="jp-kubelab-header-title">
          <kubelabIcon.react tag="span" className="jp-kubelab-header-icon" />
          <h2>kubelab</h2>
        </div>
        <NotebookView notebook={m.notebook} />
        <StatusView {...status()} />
      </div>
    ));
    this.addClass('jp-kubelab-header-view');
  }
}
