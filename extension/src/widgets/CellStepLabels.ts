/**
 * Step labels on the notebook's code cells, as Kale's panel has them: a small
 * coloured label above each cell with its step (or "skip", "imports", "parameters",
 * "metrics"); a cell that continues the step above shows its name muted. Hovering
 * tells the step's dependencies; clicking selects the step in kubelab's views.
 * The labels come from the compiler's cell→step mapping, so they are exactly what
 * the pipeline will run.
 */
import { NotebookPanel } from '@jupyterlab/notebook';

import { ICellRole } from '../api';
import { stepColor } from '../format';
import { NotebookCell, PipelineModel } from '../model';

const LABEL_CLASS = 'jp-kubelab-cell-label';
const LABELLED_CLASS = 'jp-kubelab-labelled';

const ROLE_TEXT: Record<string, string> = {
  imports: 'imports',
  functions: 'functions',
  'pipeline-parameters': 'parameters',
  'pipeline-metrics': 'metrics',
  skip: 'skip'
};

const ROLE_HINT: Record<string, string> = {
  imports: 'Runs at the start of every step',
  functions: 'Runs in every step, after the imports',
  'pipeline-parameters':
    'Pipeline parameters: set them when you run the pipeline',
  'pipeline-metrics': 'Pipeline metrics: reported with each run',
  skip: 'Left out of the pipeline'
};

interface ILabel {
  text: string;
  title: string;
  classes: string[];
  step: string | null;
}

export class CellStepLabels {
  constructor(
    private readonly _model: PipelineModel,
    private readonly _onSelect: (step: string) => void
  ) {
    _model.changed.connect(this._update, this);
  }

  /** Whether labels are shown (the `cellLabels` setting). */
  get enabled(): boolean {
    return this._enabled;
  }

  set enabled(value: boolean) {
    this._enabled = value;
    this._update();
  }

  dispose(): void {
    this._model.changed.disconnect(this._update, this);
    this._clear(this._panel);
  }

  private _update(): void {
    const panel = this._model.notebook;
    if (panel !== this._panel) {
      this._clear(this._panel);
      this._panel = panel;
    }
    const compiled = this._model.compiled;
    if (!panel || panel.isDisposed) {
      return;
    }
    if (!this._enabled || !compiled) {
      // No labels while the notebook does not compile: stale ones would mislead.
      this._clear(panel);
      return;
    }
    const roles = new Map(compiled.cells?.map(c => [c.index, c]) ?? []);
    panel.content.widgets.forEach((cell, index) => {
      const role = roles.get(index);
      const label = role ? this._describe(role) : null;
      if (cell.isDisposed) {
        return;
      }
      if (label) {
        void cell.ready.then(() => this._render(cell, label));
      } else {
        this._remove(cell);
      }
    });
  }

  private _describe(role: ICellRole): ILabel {
    const model = this._model;
    if (role.role !== 'step' && role.role !== 'pipeline-metrics') {
      return {
        text: ROLE_TEXT[role.role] ?? role.role,
        title: ROLE_HINT[role.role] ?? '',
        classes: [`jp-kubelab-cell-label-${role.role}`],
        step: null
      };
    }
    const name = role.step ?? '';
    const step = model.step(name);
    const first = step?.cells[0] === role.index;
    const inputs = (model.compiled?.edges ?? []).filter(
      e => e.to === name && e.variables.length
    );
    const lines = [
      first ? `Step ${name}` : `Part of step ${name}`,
      ...inputs.map(e => `needs ${e.variables.join(', ')} from ${e.from}`),
      ...(step?.depends_on ?? [])
        .filter(p => !inputs.some(e => e.from === p))
        .map(p => `runs after ${p}`),
      ...(step?.outputs.length ? [`gives ${step.outputs.join(', ')}`] : []),
      'Click to select it in kubelab'
    ];
    return {
      text: role.role === 'pipeline-metrics' ? 'metrics' : name,
      title: lines.join('\n'),
      classes: [
        `jp-kubelab-color-${stepColor(model.stepIndex(name))}`,
        first ? 'jp-kubelab-cell-label-first' : 'jp-kubelab-cell-label-joined',
        ...(model.selectedStep === name ? ['jp-mod-selected'] : [])
      ],
      step: name
    };
  }

  private _render(cell: NotebookCell, label: ILabel): void {
    if (
      cell.isDisposed ||
      !this._model.notebook?.content.widgets.includes(cell)
    ) {
      return;
    }
    // A step's label is a button (it selects the step); the others are plain notes.
    const tag = label.step ? 'BUTTON' : 'SPAN';
    let node = cell.node.querySelector<HTMLElement>(`:scope > .${LABEL_CLASS}`);
    const signature = JSON.stringify(label);
    if (node?.dataset.signature === signature) {
      return; // the model changes often (runs are polled): touch the DOM only when needed
    }
    if (node?.tagName !== tag) {
      node?.remove();
      node = document.createElement(tag);
      if (label.step) {
        (node as HTMLButtonElement).type = 'button';
        node.addEventListener('click', event => {
          event.stopPropagation();
          const step = (event.currentTarget as HTMLElement).dataset.step;
          if (step) {
            this._onSelect(step);
          }
        });
      }
      const input = cell.node.querySelector(':scope > .jp-Cell-inputWrapper');
      cell.node.insertBefore(node, input);
      cell.addClass(LABELLED_CLASS);
    }
    node.className = [LABEL_CLASS, ...label.classes].join(' ');
    node.textContent = label.text;
    node.title = label.title;
    node.dataset.step = label.step ?? '';
    node.dataset.testid = 'kubelab-cell-label';
    node.dataset.signature = signature;
    node.setAttribute(
      'aria-label',
      label.step ? label.title.split('\n').slice(0, -1).join('; ') : label.title
    );
  }

  private _remove(cell: NotebookCell): void {
    cell.node.querySelector(`:scope > .${LABEL_CLASS}`)?.remove();
    cell.removeClass(LABELLED_CLASS);
  }

  private _clear(panel: NotebookPanel | null): void {
    if (panel && !panel.isDisposed) {
      panel.content.widgets.forEach(cell => this._remove(cell));
    }
  }

  private _panel: NotebookPanel | null = null;
  private _enabled = true;
}
