"""etcd + kube-apiserver on free loopback ports, as controller-runtime's envtest runs them.

The binaries come from `make test-deps` (built with Go at the versions pinned in
tests/k8s/go.mod). Each process gets its own process group and dies with its parent
(PR_SET_PDEATHSIG), so nothing outlives the test session even when pytest is killed.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from .pki import Pki, make_pki

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MAKE_TARGET = "make test-deps"
_PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    pass


def pinned_versions() -> tuple[str, str]:
    """(kube-apiserver, etcd) versions from tests/k8s/go.mod, the single source of truth."""
    text = (HERE / "go.mod").read_text()
    kube = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", text, re.M)
    etcd = re.search(r"^\s*go\.etcd\.io/etcd/server/v3 (v\S+)", text, re.M)
    assert kube and etcd, "tests/k8s/go.mod must require k8s.io/kubernetes and etcd"
    return kube.group(1), etcd.group(1)


def binaries_dir() -> Path:
    return Path(os.environ.get("KUBELAB_K8S_BIN") or REPO / ".k8s" / "bin")


def find_binaries() -> tuple[Path, Path]:
    """kube-apiserver and etcd of the pinned versions, or an error naming the make target."""
    directory = binaries_dir()
    kube, etcd = pinned_versions()
    # the Makefile appends a digest of tests/k8s's sources to this
    stamp = f".built-kube-apiserver-{kube}-etcd-{etcd}-"
    apiserver, etcd_bin = directory / "kube-apiserver", directory / "etcd"
    missing = [p.name for p in (apiserver, etcd_bin) if not os.access(p, os.X_OK)]
    if missing:
        raise ControlPlaneError(
            f"{' and '.join(missing)} not found in {directory}: run `{MAKE_TARGET}` "
            f"(builds kube-apiserver {kube} and etcd {etcd} with Go, once)"
        )
    if not any(directory.glob(stamp + "*")):
        raise ControlPlaneError(
            f"the binaries in {directory} are not kube-apiserver {kube} / etcd {etcd}: "
            f"run `{MAKE_TARGET}` to rebuild them"
        )
    return apiserver, etcd_bin


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _Process:
    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name, self.log = name, log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killpg reaches everything
                preexec_fn=_die_with_parent,
            )

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise ControlPlaneError(
                f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


class ControlPlane:
    """Start with `start()` (returns the admin kubeconfig), always `stop()`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[_Process] = []
        self.pki: Pki | None = None
        self.url = ""

    def start(self, timeout: float = 90.0) -> Path:
        apiserver_bin, etcd_bin = find_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = pki = make_pki(self.workdir / "pki")
        deadline = time.monotonic() + timeout

        etcd_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        etcd = self._spawn(
            "etcd",
            [
                str(etcd_bin),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync",  # throw-away data: no fsync, much faster
                "--log-level=warn",
            ],
        )
        self._wait(etcd, f"{etcd_url}/health", deadline)

        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(apiserver_bin),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",  # as envtest: less start-up work
                "--profiling=false",
                "--v=0",
            ],
        )
        self._wait(apiserver, f"{self.url}/readyz", deadline, self._admin_tls())
        return write_kubeconfig(
            self.workdir / "admin.kubeconfig",
            {"server": self.url, "certificate-authority-data": _b64(pki.ca_cert)},
            {
                "client-certificate-data": _b64(pki.admin_cert),
                "client-key-data": _b64(pki.admin_key),
            },
        )

    def stop(self) -> None:
        for process in reversed(self.processes):  # the API server before its etcd
            process.stop()
        self.processes.clear()
        atexit.unregister(self.stop)

    def _spawn(self, name: str, argv: list[str]) -> _Process:
        process = _Process(name, argv, self.workdir / f"{name}.log")
        self.processes.append(process)
        atexit.register(self.stop)  # a backstop: pytest's finalizers normally stop us
        return process

    def _admin_tls(self) -> ssl.SSLContext:
        assert self.pki is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def _wait(
        self, process: _Process, url: str, deadline: float, tls: ssl.SSLContext | None = None
    ) -> None:
        last = ""
        while time.monotonic() < deadline:
            process.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2, context=tls) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as error:
                last = str(error)
            time.sleep(0.1)
        raise ControlPlaneError(
            f"{process.name} not ready at {url} ({last}):\n{process.log_tail()}"
        )


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "test", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
