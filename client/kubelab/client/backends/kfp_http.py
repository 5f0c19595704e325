"""HTTP to a Kubeflow Pipelines API server, and nothing else.

What a KFP server and the gateways in front of it do that a client must not trust:
KFP's Go router decodes `%2F` in paths and 301-redirects `..` segments, so an id is
validated before it becomes a (quoted) path segment and no redirect is ever followed
(a redirect would carry the token to another endpoint, or to a login page). A gateway
that wants a login answers 200 with an HTML page: any 2xx that is not the JSON asked
for becomes a clear error naming the endpoint. The bearer token (a projected
ServiceAccount token, audience `pipelines.kubeflow.org`) is read from its file on
every request because the kubelet rotates it.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import ConflictError, ForbiddenError, KubelabError, NotFoundError

# Where kfp.Client looks for the token too (kfp/client/__init__.py).
TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"
TOKEN_AUDIENCE = "pipelines.kubeflow.org"

# KFP's run and experiment ids are UUIDs; pod names are DNS-1123 subdomains.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_POD = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class KfpUnavailableError(KubelabError):
    """Kubeflow Pipelines (or a gateway before it) could not answer what was asked."""

    status_code = 502


def segment(value: Any, what: str = "run id") -> str:
    """`value` as one quoted path segment, once it is known to be a KFP id."""
    pattern = _POD if what == "pod name" else _ID
    if not isinstance(value, str) or len(value) > 253 or not pattern.fullmatch(value):
        raise KubelabError(f"{value!r} is not a Kubeflow Pipelines {what}", **{"id": str(value)})
    return urllib.parse.quote(value, safe="")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


class KfpHttp:
    """Requests to `endpoint` (the API server, e.g. http://ml-pipeline.kubeflow:8888).

    `token_file` names the bearer token's file; when empty, `$KF_PIPELINES_SA_TOKEN_PATH`
    or the projected token's default path is used if it exists (no token otherwise, as
    a single-user install needs none).
    """

    def __init__(self, endpoint: str, token_file: str | None = None, timeout: float = 30) -> None:
        parsed = urllib.parse.urlsplit(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise KubelabError(
                f"Kubeflow Pipelines endpoint {endpoint!r} must be an http(s) URL",
                field="kfp_endpoint",
            )
        self.endpoint = endpoint.rstrip("/")
        self.token_file = token_file or None
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_RefuseRedirects)

    def token(self) -> str | None:
        if self.token_file:
            path = Path(self.token_file)
            try:
                return path.read_text().strip() or None
            except OSError as error:
                raise KubelabError(
                    f"cannot read the Kubeflow Pipelines token file {path}: {error.strerror}",
                    field="kfp_token_file",
                ) from None
        path = Path(os.environ.get(TOKEN_PATH_ENV) or DEFAULT_TOKEN_PATH)
        try:
            return path.read_text().strip() or None
        except OSError:
            return None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        text: bool = False,
    ) -> Any:
        """The JSON object answered to `method /apis/<path>` (its text when `text`).

        `path` is built from `segment()`s; `query` values that are None are left out.
        """
        what = f"{method} /apis/{path}"
        url = f"{self.endpoint}/apis/{path}"
        params = {k: v for k, v in (query or {}).items() if v is not None and v != ""}
        if params:
            url += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        request = urllib.request.Request(url, method=method)
        request.add_header("Accept", "text/plain" if text else "application/json")
        if body is not None:
            request.data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        elif method == "POST":
            request.data = b""  # a POST without a body still says so (Content-Length: 0)
        token = self.token()
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
                content_type = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            raise self._error(error, what) from None
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise KfpUnavailableError(
                f"cannot reach Kubeflow Pipelines at {self.endpoint}: {reason}",
                endpoint=self.endpoint,
            ) from None
        if text:
            return raw.decode("utf-8", errors="replace")
        return self._json(raw, content_type, what)

    def _json(self, raw: bytes, content_type: str, what: str) -> dict[str, Any]:
        try:
            answer = json.loads(raw) if raw.strip() else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            kind = content_type.split(";")[0].strip() or "a body"
            raise KfpUnavailableError(
                f"Kubeflow Pipelines at {self.endpoint} answered {what} with {kind} that is "
                "not a JSON object: is the endpoint the KFP API server, and does a gateway "
                "in front of it ask for a login?",
                endpoint=self.endpoint,
                request=what,
            )
        return answer

    def _error(self, error: urllib.error.HTTPError, what: str) -> KubelabError:
        code = error.code
        if 300 <= code < 400:
            return KfpUnavailableError(
                f"Kubeflow Pipelines at {self.endpoint} redirected {what} to "
                f"{error.headers.get('Location') or 'another address'}; kubelab does not "
                "follow redirects (a gateway asking for a login? check the endpoint and token)",
                endpoint=self.endpoint,
                request=what,
            )
        message = _message(error.read(), error.headers.get("Content-Type", ""))
        text = f"Kubeflow Pipelines answered {code} to {what}: {message}"
        details = {"endpoint": self.endpoint, "request": what, "kfp_status": code}
        if code == 404:
            return NotFoundError(text, **details)
        if code in (401, 403):
            return ForbiddenError(text, **details)
        if code == 409:
            return ConflictError(text, **details)
        if 400 <= code < 500:
            return KubelabError(text, **details)
        return KfpUnavailableError(text, **details)


def _message(raw: bytes, content_type: str) -> str:
    """The message of an error body: googleRpcStatus JSON, KFP's log error JSON, or text."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "error_message", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    if "html" in content_type:
        return "an HTML page (a gateway's login or error page?)"
    return raw.decode("utf-8", errors="replace").strip()[:300] or "(no message)"
