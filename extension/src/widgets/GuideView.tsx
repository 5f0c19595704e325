import * as React from 'react';

import { MainAreaWidget } from '@jupyterlab/apputils';
import { Button, ReactWidget } from '@jupyterlab/ui-components';

import { kubelabIcon } from '../icons';

const TAGS: [string, string][] = [
  ['step:NAME', 'starts step NAME; the untagged cells below join it'],
  ['prev:NAME', 'this step also runs after step NAME'],
  ['imports', 'runs at the start of every step'],
  ['functions', 'runs in every step, after the imports'],
  ['pipeline-parameters', '`name = value` lines: the parameters of a run'],
  ['pipeline-metrics', 'the values each run reports'],
  ['skip', 'left out of the pipeline'],
  [
    'limit:cpu:2, limit:memory:4Gi, limit:nvidia.com/gpu:1',
    'resources of the step'
  ],
  ['image:REF', 'container image of the step (on Kubernetes)']
];

function Guide({ onExample }: { onExample: () => void }): JSX.Element {
  return (
    <article className="jp-kubelab-guide" data-testid="kubelab-guide">
      <h1>Notebooks as pipelines</h1>
      <p>
        kubelab runs a notebook as a pipeline of steps, each in a process of its
        own, in parallel where the data allows: on this machine, or on Kubeflow
        Pipelines in a cluster. The notebook stays a notebook: the steps are
        cell tags (the same as Kale&apos;s), and it runs top to bottom in
        Jupyter as before.
      </p>
      <Button className="jp-mod-styled jp-mod-accept" onClick={onExample}>
        Create an example notebook
      </Button>
      <h2>1. Make steps</h2>
      <p>
        Select the first cell of a step and, in the kubelab sidebar, make it a
        step (or run <em>kubelab: Make This Cell a Step</em>). The cells below
        it join the step until the next one starts. A label above each cell says
        which step it is in.
      </p>
      <h2>2. Run</h2>
      <p>
        <em>Run as pipeline</em> (in the sidebar, the notebook toolbar or the
        command palette) saves the notebook and runs it. A variable that a step
        uses and an earlier step sets is passed between them: the analysis finds
        these dependencies, and the pipeline view draws them.
      </p>
      <h2>3. Look and iterate</h2>
      <p>
        The pipeline view shows each step&apos;s state, duration and log. A step
        whose code and inputs did not change comes from the cache;{' '}
        <em>Run from here</em> re-runs one step and what follows. A failed step
        names its cell and line.
      </p>
      <h2>Tags</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">tag</th>
            <th scope="col">meaning</th>
          </tr>
        </thead>
        <tbody>
          {TAGS.map(([tag, meaning]) => (
            <tr key={tag}>
              <td>
                <code>{tag}</code>
              </td>
              <td>{meaning}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>From a terminal or Python</h2>
      <pre>
        {[
          'kubelab validate notebook.ipynb',
          'kubelab run notebook.ipynb --param n_estimators=50',
          'kubelab runs list'
        ].join('\n')}
      </pre>
    </article>
  );
}

/** A short guide to notebook pipelines, with a way to an example notebook. */
export class GuideView extends MainAreaWidget<ReactWidget> {
  constructor(onExample: () => void) {
    super({ content: ReactWidget.create(<Guide onExample={onExample} />) });
    this.id = 'kubelab-guide';
    this.title.label = 'kubelab guide';
    this.title.icon = kubelabIcon;
    this.title.closable = true;
    this.toolbar.hide();
    this.addClass('jp-kubelab-guide-view');
  }
}
