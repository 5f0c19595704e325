import { LabIcon } from '@jupyterlab/ui-components';

import kubelabSvg from '../style/icons/kubelab.svg';

/** The kubelab mark: a pipeline of three steps in a wheel. */
export const kubelabIcon = new LabIcon({
  name: 'kubelab:logo',
  svgstr: kubelabSvg
});
