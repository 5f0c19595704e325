/**
 * Typed client for the kubelab REST API (`/kubelab/api/...`).
 *
 * Every call goes through Jupyter's ServerConnection so it carries the
 * session's auth token and XSRF cookie; errors come back as `KubelabApiError`
 * with the server's JSON `{message, ...}` body.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IBackend {
  name: string;
  available: boolean;
  reason?: string | null;
}

export interface IIdentity {
  user: string;
  name: string;
  groups: string[];
}

export interface IProfile {
  slug: string;
  display_name?: string;
  image?: string;
  [key: string]: unknown;
}

export interface IStatus {
  version: string;
  backends: IBackend[];
  default_backend: string;
  identity: IIdentity;
  profile: IProfile | null;
}

/** An error answered by the server, with its JSON details (e.g. `cell`). */
export class KubelabApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly details: Record<string, unknown> = {}
  ) {
    super(message);
  }
}

export class KubelabClient {
  constructor(
    private readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  status(): Promise<IStatus> {
    return this.request<IStatus>('status');
  }

  /** Low-level call; `path` is relative to `/kubelab/api/`. */
  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const url = URLExt.join(this.settings.baseUrl, 'kubelab', 'api', path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new ServerConnection.NetworkError(error as TypeError);
    }
    const text = await response.text();
    let body: any = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = { message: text };
      }
    }
    if (!response.ok) {
      const message = body?.message ?? response.statusText;
      throw new KubelabApiError(message, response.status, body ?? {});
    }
    return body as T;
  }
}
