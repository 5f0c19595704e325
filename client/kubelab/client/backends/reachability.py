"""Whether the kubernetes backend can be used now: configured, and its servers answer.

`GET status` reports it and a sidebar polls status, so each probe has a short timeout
(`PROBE_TIMEOUT_S`, no retries) and `BackendsStatus` keeps its answer for `CACHE_S`
seconds: a cluster that is down costs one short wait per period, not one per poll.
Pipelines go to Kubeflow Pipelines (`GET /apis/v2beta1/healthz`), jobs to the
Kubernetes API (`GET /version`, which also checks the credentials); each is reported.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PROBE_TIMEOUT_S = 2.0
CACHE_S = 30.0


def _short(error: BaseException) -> str:
    """The innermost reason of a network error, on one line."""
    while getattr(error, "reason", None) is not None and isinstance(error.reason, BaseException):
        error = error.reason
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


def kubernetes_api_reason(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why jobs cannot go to the Kubernetes API now, or None when it answers."""
    from kubelab.client.backends.kubernetes import reason_unavailable

    reason = reason_unavailable()
    if reason:
        return reason
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    configuration = client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            # $KUBECONFIG as it is now (the library reads it once, when imported)
            kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
            config.load_kube_config(kubeconfig, client_configuration=configuration)
    except Exception as error:
        return f"cannot load Kubernetes credentials: {_short(error)}"
    configuration.retries = 0
    try:
        with client.ApiClient(configuration) as api:
            client.VersionApi(api).get_code(_request_timeout=timeout)
    except ApiException as error:
        return f"the Kubernetes API at {configuration.host} answered {error.status} {error.reason}"
    except Exception as error:
        return f"cannot reach the Kubernetes API at {configuration.host}: {_short(error)}"
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer we do not follow (it could leak the token)


def pipelines_reason(
    endpoint: str, token_file: str | os.PathLike[str] | None, timeout: float = PROBE_TIMEOUT_S
) -> str | None:
    """Why pipelines cannot go to Kubeflow Pipelines now, or None when it answers."""
    if not endpoint:
        return (
            "no Kubeflow Pipelines endpoint configured "
            "(c.KubelabApp.kfp_endpoint or $KUBELAB_KFP_ENDPOINT)"
        )
    url = f"{endpoint.rstrip('/')}/apis/v2beta1/healthz"
    request = urllib.request.Request(url)
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as error:
            return f"cannot read the Kubeflow Pipelines token file: {error.strerror}"
        if token:
            request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(4096)
    except urllib.error.HTTPError as error:
        return f"Kubeflow Pipelines at {endpoint} answered {error.code} {error.reason}"
    except (OSError, ValueError) as error:
        return f"cannot reach Kubeflow Pipelines at {endpoint}: {_short(error)}"
    return None


class BackendsStatus:
    """What `GET status` says of each backend, probed at most once per `CACHE_S`."""

    def __init__(self, kfp_endpoint: str, kfp_token_file: str | os.PathLike[str] | None) -> None:
        self.kfp_endpoint = kfp_endpoint
        self.kfp_token_file = kfp_token_file
        self._lock = threading.Lock()
        self._cached: tuple[float, list[dict[str, Any]]] | None = None

    def __call__(self) -> list[dict[str, Any]]:
        with self._lock:  # callers at the same time share one probe
            if self._cached and time.monotonic() - self._cached[0] < CACHE_S:
                return self._cached[1]
            answer = self._probe()
            self._cached = (time.monotonic(), answer)
            return answer

    def _probe(self) -> list[dict[str, Any]]:
        with ThreadPoolExecutor(2, thread_name_prefix="kubelab-probe") as pool:
            pipelines = pool.submit(pipelines_reason, self.kfp_endpoint, self.kfp_token_file)
            jobs = pool.submit(kubernetes_api_reason)
            parts = {"pipelines": pipelines.result(), "jobs": jobs.result()}
        kubernetes: dict[str, Any] = {
            "name": "kubernetes",
            "available": any(reason is None for reason in parts.values()),
            "reason": "; ".join(f"{part}: {why}" for part, why in parts.items() if why) or None,
        }
        for part, why in parts.items():
            kubernetes[part] = {"available": why is None, "reason": why}
        return [{"name": "local", "available": True, "reason": None}, kubernetes]
