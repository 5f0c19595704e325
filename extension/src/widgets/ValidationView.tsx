import * as React from 'react';

import { IValidationReport } from '../api';
import { cellLabel } from '../format';

export interface IValidationViewProps {
  report: IValidationReport;
  onSelectCell: (index: number) => void;
}

/** The result of "Validate": errors by cell, and every cross-step variable's round trip. */
export function ValidationView({
  report,
  onSelectCell
}: IValidationViewProps): JSX.Element {
  return (
    <div
      className={
        'jp-kubelab-validation ' +
        (report.ok
          ? 'jp-kubelab-validation-ok'
          : 'jp-kubelab-validation-failed')
      }
      data-testid="kubelab-validation"
      data-ok={report.ok}
    >
      <div className="jp-kubelab-validation-title">
        {report.ok ? 'Valid' : 'Problems found'}
        <span className="jp-kubelab-muted">
          {' '}
          · {report.seconds.toFixed(1)} s
        </span>
      </div>
      {report.errors.map((error, i) => (
        <div key={i} className="jp-kubelab-error">
          {error.message}
          {typeof error.cell === 'number' && (
            <button
              className="jp-kubelab-link"
              onClick={() => onSelectCell(error.cell as number)}
            >
              Go to {cellLabel(error.cell)}
            </button>
          )}
        </div>
      ))}
      {report.variables.length > 0 && (
        <ul className="jp-kubelab-variables">
          {report.variables.map(v => (
            <li key={`${v.producer}/${v.name}`} title={v.error ?? undefined}>
              <span className={v.ok ? 'jp-kubelab-ok' : 'jp-kubelab-error'}>
                {v.ok ? '✓' : '✗'}
              </span>{' '}
              <code>{v.name}</code>
              <span className="jp-kubelab-muted">
                {' '}
                {v.producer} → {v.consumers.join(', ') || '—'}
                {v.marshaller ? ` · ${v.marshaller}` : ''}
              </span>
            </li>
          ))}
        </ul>
      )}
      {report.warnings.map((warning, i) => (
        <div key={`w${i}`} className="jp-kubelab-warning">
          {warning}
        </div>
      ))}
    </div>
  );
}
