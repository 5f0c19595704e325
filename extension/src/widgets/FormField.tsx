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
        <FieldError id={id} error={error ?? null} />
      </div>
    </>
  );
}

/** The server's message about a field, under it (`<id>-error`). */
export function FieldError(props: {
  id: string;
  error: string | null;
}): JSX.Element | null {
  return props.error ? (
    <div
      className="jp-kubelab-error jp-kubelab-field-error"
      role="alert"
      data-testid={`${props.id}-error`}
    >
      {props.error}
    </div>
  ) : null;
}

/** A labelled number input (checked by the server: its message shows under it). */
export function NumberField(
  props: Omit<IFieldProps, 'children'> & {
    value: string;
    min?: number;
    max?: number;
    onChange: (value: string) => void;
  }
): JSX.Element {
  const { id, value, min, max, onChange, ...field } = props;
  return (
    <Field id={id} {...field}>
      <input
        id={id}
        className="jp-mod-styled jp-kubelab-input"
        type="number"
        min={min}
        max={max}
        value={value}
        aria-describedby={field.hint ? `${id}-hint` : undefined}
        onChange={event => onChange(event.target.value)}
      />
    </Field>
  );
}

/** Any failure as an API error, so forms handle one kind. */
export function asApiError(reason: unknown): KubelabApiError {
  return reason instanceof KubelabApiError
    ? reason
    : new KubelabApiError((reason as Error).message, 0);
}
