/**
 * The example notebook the guide creates: a small pipeline that runs in seconds
 * with the standard library only, its tags doing what the guide says.
 */
function cell(source: string, tags: string[] = []) {
  return {
    cell_type: 'code',
    source,
    metadata: tags.length ? { tags } : {},
    outputs: [],
    execution_count: null
  };
}

function markdown(source: string) {
  return { cell_type: 'markdown', source, metadata: {} };
}

export const EXAMPLE_NOTEBOOK = {
  nbformat: 4,
  nbformat_minor: 5,
  metadata: {
    kernelspec: {
      name: 'python3',
      display_name: 'Python 3 (ipykernel)',
      language: 'python'
    }
  },
  cells: [
    markdown(
      '# A first pipeline\n\n' +
        'The label above each code cell is its step. `make_data` feeds `mean` and ' +
        '`spread`, which run in parallel; `report` needs both. Press ' +
        '**Run as pipeline** in the toolbar or the kubelab sidebar.'
    ),
    cell('import random\nimport statistics', ['imports']),
    cell('n = 1000\nseed = 0', ['pipeline-parameters']),
    cell('random.seed(seed)\ndata = [random.gauss(10, 2) for _ in range(n)]', [
      'step:make_data'
    ]),
    cell('mean = statistics.mean(data)', ['step:mean']),
    cell('spread = statistics.stdev(data)', ['step:spread']),
    cell(
      'ratio = spread / mean\nprint(f"mean {mean:.2f}, spread {spread:.2f}, ratio {ratio:.3f}")',
      ['step:report']
    ),
    cell('mean\nspread\nratio', ['pipeline-metrics'])
  ]
};
