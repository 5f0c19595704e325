import * as React from 'react';

import { KubelabApiError } from '../api';

/**
 * Where a refused request's message goes: the server names the spec field it is
 * about (`num_nodes`, `resources_per_node.gpu`, `search_space.lr.values`); a form
 * field owns the names that start with one of its `fields`.
 */
export function errorFor(
  error: KubelabApiError | null,
  fields: ReadonlyArray<string>
): string | null {
  const field = error?.details.field;
  if (!error || typeof field !== 'string' || !field) {
    return null;
  }
  return fields.some(
    f => field === f || field.startsWith(`${f}.`) || field.startsWith(`${f}[`)
  )
    ? error.message
    : null;
}

/** Whether some field of the form shows `error` (else the form shows it on top). */
export function claimed(
  error: KubelabApiError | null,
  all: ReadonlyArray<ReadonlyArray<string>>
): boolean {
  return all.some(fields => errorFor(error, fields) !== null);
}

/** A whole number as typed, else the text (the server says what is wrong with it). */
export function whole(text: string): number | string {
  return /^\s*-?\d+\s*$/.test(text) ? parseInt(text, 10) : text;
}

/** A number as typed, else the text (the server says what is wrong with it). */
export function numeric(text: string): number | string {
  const value = Number(text);
  return text.trim() !== '' && Number.isFinite(value) ? value : text;
}

export interface IFieldProps {
  id: string;
  label: string;
  /** What the value means or allows, under the input. */
  hint?: React.ReactNode;
  /** The server's message about this field. */
  error?: string | null;
  children: React.ReactNode;
}

/** A labelled form row, with its hint and the server's message about it. */
export function Field({
  id,
  label,
  hint,
  error,
  children
}: IFieldProps): JSX.Element {
  return (
    <>
      <label htmlFor={id} className="jp-kubelab-form-label">
        {label}
      </label>
      <div className="jp-kubelab-form-value">
        {children}
        {hint && (
          <div className="jp-kubelab-muted jp-kubelab-hint" id={`${id}-hint`}>
            {hint}
          </div>
        )}
        {error && (
          <div
            className="jp-kubelab-error jp-kubelab-field-error"
            role="alert"
            data-testid={`${id}-error`}
          >
            {error}
          </div>
        )}
      </div>
    </>
  );
}
