import * as React from 'react';

import { IEdge } from '../api';

/**
 * What flows along data edges, one line per other step: "`X_train`, `y_train` from
 * load_data" (`side="from"`) or "`forest` to evaluate" (`side="to"`).
 */
export function EdgeVariables({
  edges,
  side,
  testid,
  label
}: {
  edges: IEdge[];
  side: 'from' | 'to';
  testid?: string;
  label?: string;
}): JSX.Element {
  return (
    <ul
      className="jp-kubelab-plain-list"
      data-testid={testid}
      aria-label={label}
    >
      {edges.map(edge => (
        <li key={`${edge.from}-${edge.to}`}>
          {edge.variables.map((v, i) => (
            <React.Fragment key={v}>
              {i > 0 && ', '}
              <code>{v}</code>
            </React.Fragment>
          ))}{' '}
          <span className="jp-kubelab-muted">{side}</span> {edge[side]}
        </li>
      ))}
    </ul>
  );
}
