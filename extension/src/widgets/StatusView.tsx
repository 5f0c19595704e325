import * as React from 'react';

import { IStatus } from '../api';

export interface IStatusViewProps {
  status: IStatus | null;
  error: string | null;
}

/** Who you are and where your work runs, as the server reports it, in one line. */
export function StatusView({ status, error }: IStatusViewProps): JSX.Element {
  if (error) {
    return (
      <div className="jp-kubelab-status jp-kubelab-error" role="alert">
        kubelab server unreachable: {error}
      </div>
    );
  }
  if (!status) {
    return (
      <div className="jp-kubelab-status jp-kubelab-muted">Connecting…</div>
    );
  }
  const backends = status.backends
    .map(b => (b.available ? b.name : `${b.name} (unavailable)`))
    .join(', ');
  const groups = status.identity.groups.join(', ');
  return (
    <div className="jp-kubelab-status" data-testid="kubelab-status">
      <span
        className="jp-kubelab-user"
        title={groups ? `groups: ${groups}` : undefined}
      >
        {status.identity.name}
      </span>
      {status.profile && (
        <span className="jp-kubelab-profile">
          {status.profile.display_name ?? status.profile.slug}
        </span>
      )}
      <span className="jp-kubelab-backend" title={`backends: ${backends}`}>
        {status.default_backend}
      </span>
      <span className="jp-kubelab-version">kubelab {status.version}</span>
    </div>
  );
}
