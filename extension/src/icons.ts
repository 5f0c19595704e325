import { LabIcon } from '@jupyterlab/ui-components';

import kubelabSvg from '../style/icons/kubelab.svg';
import pipelineSvg from '../style/icons/pipeline.svg';

/** The kubelab mark: a pipeline of three steps in a wheel. */
export const kubelabIcon = new LabIcon({
  name: 'kubelab:logo',
  svgstr: kubelabSvg
});

/** A pipeline graph: one step feeding two. */
export const pipelineIcon = new LabIcon({
  name: 'kubelab:pipeline',
  svgstr: pipelineSvg
});
