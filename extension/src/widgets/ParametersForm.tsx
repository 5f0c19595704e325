import * as React from 'react';

import { IParameterSpec } from '../api';

export interface IParametersFormProps {
  parameters: Record<string, IParameterSpec>;
  values: Record<string, unknown>;
  onChange: (name: string, value: unknown) => void;
  /** Prefix of the inputs' ids (forms elsewhere on the page use their own). */
  idPrefix?: string;
}

function format(type: string, value: unknown): string {
  return type === 'list' || type === 'dict'
    ? JSON.stringify(value)
    : String(value ?? '');
}

/** The typed value of an input's text, or `ok: false` when it does not fit `type`. */
function parse(type: string, raw: string): { ok: boolean; value: unknown } {
  if (type === 'int') {
    return { ok: /^\s*-?\d+\s*$/.test(raw), value: parseInt(raw, 10) };
  }
  if (type === 'float') {
    const value = Number(raw);
    return { ok: raw.trim() !== '' && Number.isFinite(value), value };
  }
  if (type === 'list' || type === 'dict') {
    try {
      const value: unknown = JSON.parse(raw);
      const ok =
        type === 'list'
          ? Array.isArray(value)
          : typeof value === 'object' &&
            value !== null &&
            !Array.isArray(value);
      return { ok, value };
    } catch {
      return { ok: false, value: raw };
    }
  }
  return { ok: true, value: raw };
}

function ParameterInput(props: {
  id: string;
  spec: IParameterSpec;
  value: unknown;
  onChange: (value: unknown) => void;
}): JSX.Element {
  const { id, spec, value, onChange } = props;
  const [text, setText] = React.useState(() => format(spec.type, value));
  const [invalid, setInvalid] = React.useState(false);
  React.useEffect(() => {
    // Follow outside changes (a recompile), but never rewrite what is being typed.
    const current = parse(spec.type, text);
    if (
      !current.ok ||
      JSON.stringify(current.value) !== JSON.stringify(value)
    ) {
      setText(format(spec.type, value));
      setInvalid(false);
    }
  }, [value, spec.type]);

  if (spec.type === 'bool') {
    return (
      <input
        id={id}
        type="checkbox"
        checked={Boolean(value)}
        data-testid={id}
        onChange={event => onChange(event.target.checked)}
      />
    );
  }
  const numeric = spec.type === 'int' || spec.type === 'float';
  return (
    <input
      id={id}
      className={
        'jp-mod-styled jp-kubelab-input' +
        (invalid ? ' jp-kubelab-invalid' : '')
      }
      type={numeric ? 'number' : 'text'}
      step={spec.type === 'float' ? 'any' : numeric ? 1 : undefined}
      value={text}
      data-testid={id}
      aria-invalid={invalid}
      title={
        invalid
          ? `not a valid ${spec.type}`
          : `${spec.type}, default ${JSON.stringify(spec.default)}`
      }
      onChange={event => {
        const raw = event.target.value;
        const parsed = parse(spec.type, raw);
        setText(raw);
        setInvalid(!parsed.ok);
        if (parsed.ok) {
          onChange(parsed.value);
        }
      }}
    />
  );
}

/** Typed inputs for the pipeline parameters, prefilled with the notebook's defaults. */
export function ParametersForm({
  parameters,
  values,
  onChange,
  idPrefix = 'kubelab-param'
}: IParametersFormProps): JSX.Element | null {
  const names = Object.keys(parameters);
  if (names.length === 0) {
    return null;
  }
  return (
    <div className="jp-kubelab-params" data-testid="kubelab-parameters">
      {names.map(name => (
        <React.Fragment key={name}>
          <label htmlFor={`${idPrefix}-${name}`}>
            {name}
            <span className="jp-kubelab-muted"> {parameters[name].type}</span>
          </label>
          <ParameterInput
            id={`${idPrefix}-${name}`}
            spec={parameters[name]}
            value={values[name]}
            onChange={value => onChange(name, value)}
          />
        </React.Fragment>
      ))}
    </div>
  );
}
