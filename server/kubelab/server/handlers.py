"""REST handlers under /kubelab/api/: the base class and `GET status`.

Every handler requires Jupyter authentication, XSRF on writes and Jupyter's
authorization layer (the same `Authorizer` that guards Jupyter's own APIs, e.g. the
one a JupyterHub read-only share installs). Three levels, one decorator each:

| decorator   | needs                                        | endpoints |
|-------------|----------------------------------------------|-----------|
| `guarded`   | `read` on kubelab for GET, `write` for POST/PATCH/DELETE | status, runs, run, logs, jobs, compare, lineage (GET); cancel, DELETE job, experiments (POST/PATCH) |
| `reads`     | `read` on kubelab and `read` on contents     | POST pipelines/compile (answers what the notebook holds, runs nothing) |
| `runs_code` | `write` on kubelab and `execute` on kernels  | POST runs, rerun, run-from, reproduce, pipelines/validate, POST jobs |

Running a notebook's steps or a job's function executes the user's code, which is
what `execute` on `kernels` means to Jupyter: whoever may not run a kernel may not run
a pipeline either. Handlers parse the request, call the server's `Client` and write
JSON; a `KubelabError` becomes a 4xx with its message.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from kubelab.pipelines import __version__
from kubelab.pipelines.errors import KubelabError

from .identity import current_profile, describe_identity

API_PREFIX = "/kubelab/api"
AUTH_RESOURCE = "kubelab"

T = TypeVar("T")


def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Login, then Jupyter's authorizer (read for GET, write for POST/DELETE)."""
    return web.authenticated(authorized(method))


def reads(method: Callable[..., Any]) -> Callable[..., Any]:
    """A POST that only reads: `read` on kubelab and on the user's files (contents)."""
    return web.authenticated(
        authorized("read", AUTH_RESOURCE)(authorized("read", "contents")(method))
    )


def runs_code(method: Callable[..., Any]) -> Callable[..., Any]:
    """Starts the user's code: `write` on kubelab and `execute` on kernels."""
    return web.authenticated(
        authorized("write", AUTH_RESOURCE)(authorized("execute", "kernels")(method))
    )


class KubelabHandler(ExtensionHandlerMixin, APIHandler):
    """Base handler: JSON in, JSON out, `KubelabError` becomes a 4xx with its details."""

    auth_resource = AUTH_RESOURCE

    @property
    def client(self) -> Any:
        return self.extensionapp.client()

    @property
    def root_dir(self) -> str:
        root = self.settings.get("server_root_dir")
        if not root:
            root = getattr(self.contents_manager, "root_dir", None) or os.getcwd()
        return str(root)

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call off the event loop."""
        return await asyncio.to_thread(function, *args, **kwargs)

    def read_json(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as error:
            raise KubelabError(f"request body is not valid JSON: {error}") from error
        if not isinstance(body, dict):
            raise KubelabError("request body must be a JSON object")
        return body

    def int_argument(self, name: str, default: int) -> int:
        try:
            return int(self.get_query_argument(name, str(default)))
        except ValueError:
            raise KubelabError(f"'{name}' must be an integer") from None

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, KubelabError):
            self.set_status(error.status_code)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(error.to_json(), default=str))
            return
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[no-untyped-def]
        if isinstance(value, KubelabError):
            self.log.info("kubelab: %s %s -> %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)


class StatusHandler(KubelabHandler):
    @guarded
    async def get(self) -> None:
        backends = await self.call(self.client.backends_status)
        self.write_json(
            {
                "version": __version__,
                "backends": backends,
                "default_backend": self.extensionapp.default_backend,
                "identity": describe_identity(self.current_user),
                "profile": current_profile(),
            }
        )


def default_handlers() -> list[tuple[str, type]]:
    from .jobs import job_handlers
    from .lineage import lineage_handlers
    from .runs import run_handlers
    from .serving import serving_handlers

    return [
        (rf"{API_PREFIX}/status", StatusHandler),
        *lineage_handlers(API_PREFIX),  # before runs/{id}: runs/compare is not a run
        *run_handlers(API_PREFIX),
        *job_handlers(API_PREFIX),
        *serving_handlers(API_PREFIX),
    ]
