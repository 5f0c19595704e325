import * as React from 'react';

/** A server answer for a view: the value once it came, why it failed, and ask again. */
export interface IRequest<T> {
  value: T | null;
  error: string | null;
  reload: () => void;
}

/**
 * Ask the server once per `key` (and again on `reload`); an answer that comes after
 * the view moved on to another key, or closed, is dropped.
 */
export function useRequest<T>(
  request: () => Promise<T>,
  key: string
): IRequest<T> {
  const [value, setValue] = React.useState<T | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [loads, setLoads] = React.useState(0);
  React.useEffect(() => {
    let current = true;
    request()
      .then(answer => {
        if (current) {
          setValue(answer);
          setError(null);
        }
      })
      .catch(reason => current && setError((reason as Error).message));
    return () => {
      current = false;
    };
  }, [key, loads]);
  return { value, error, reload: () => setLoads(n => n + 1) };
}
