import * as React from 'react';

import { IStatus } from '../api';

export interface IStatusViewProps {
  status: IStatus | null;
  error: string | null;
}

/** Who you are and where your work runs, as the server reports it. */
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
  return (
    <dl className="jp-kubelab-status" data-testid="kubelab-status">
      <dt>User</dt>
      <dd className="jp-kubelab-user">
        {status.identity.name}
        {status.identity.groups.length > 0 && (
          <span className="jp-kubelab-muted">
            {' '}
            · {status.identity.groups.join(', ')}
          </span>
        )}
      </dd>
      {status.profile && (
        <>
          <dt>Profile</dt>
          <dd className="jp-kubelab-profile">
            {status.profile.display_name ?? status.profile.slug}
          </dd>
        </>
      )}
      <dt>Backend</dt>
      <dd className="jp-kubelab-backend" title={`available: ${backends}`}>
        {status.default_backend}
      </dd>
      <dt>Version</dt>
      <dd className="jp-kubelab-version">kubelab {status.version}</dd>
    </dl>
  );
}
