"""REST handlers under /kubelab/api/. Every handler requires Jupyter auth and XSRF."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from kubelab.pipelines import __version__
from kubelab.pipelines.errors import KubelabError

from .backends import available_backends
from .identity import current_profile, describe_identity

API_PREFIX = "/kubelab/api"


class KubelabHandler(ExtensionHandlerMixin, APIHandler):
    """Base handler: JSON in, JSON out, `KubelabError` becomes a 4xx with its details."""

    def read_json(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as error:
            raise KubelabError(f"request body is not valid JSON: {error}") from error
        if not isinstance(body, dict):
            raise KubelabError("request body must be a JSON object")
        return body

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
    @web.authenticated
    def get(self) -> None:
        self.write_json(
            {
                "version": __version__,
                "backends": available_backends(),
                "default_backend": self.extensionapp.default_backend,
                "identity": describe_identity(self.current_user),
                "profile": current_profile(),
            }
        )


def default_handlers() -> list[tuple[str, type]]:
    from .runs import run_handlers

    return [(rf"{API_PREFIX}/status", StatusHandler), *run_handlers(API_PREFIX)]
