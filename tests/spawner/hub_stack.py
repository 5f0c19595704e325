"""Run the real local demo stack (deploy/local/run_hub.py) for tests and log in over OIDC.

The launcher starts oidc-provider-mock and JupyterHub (configurable-http-proxy,
GenericOAuthenticator, LocalKubelabSpawner) on free ports on 127.0.0.1; `running_hub`
always stops it, and any single-user server it left behind, by process id.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
RUN_HUB = REPO / "deploy" / "local" / "run_hub.py"
CHP = REPO / ".hub" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HubStack:
    url: str
    oidc_url: str
    hub_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _singleuser_pids(hub_dir: Path) -> dict[int, str]:
    """Single-user servers started by this hub (found by their KUBELAB_TOKEN_DIR)."""
    marker = f"KUBELAB_TOKEN_DIR={hub_dir}/runtime/".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(marker):
                found[int(entry.name)] = item[len(marker) :].split(b"/")[0].decode()
    return found


def singleuser_pid(hub_dir: Path, user: str) -> int:
    pids = [pid for pid, name in _singleuser_pids(hub_dir).items() if name == user]
    assert pids, f"no single-user server process for {user}"
    return min(pids)


def start_hub(hub_dir: Path, *launcher_args: str, env: dict[str, str] | None = None) -> HubStack:
    hub_dir.mkdir(parents=True, exist_ok=True)
    port, oidc_port = free_port(), free_port()
    log_path = hub_dir / "launcher.log"
    proc_env = {**os.environ, "KUBELAB_CHP": str(CHP), **(env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(RUN_HUB),
                "--port",
                str(port),
                "--oidc-port",
                str(oidc_port),
                "--hub-dir",
                str(hub_dir),
                *launcher_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=proc_env,
            start_new_session=True,
        )
    return HubStack(
        f"http://127.0.0.1:{port}", f"http://127.0.0.1:{oidc_port}", hub_dir, log_path, proc
    )


def wait_ready(stack: HubStack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "kubelab is running" in stack.log():
            return
        if stack.proc.poll() is not None:
            raise RuntimeError(f"launcher exited ({stack.proc.returncode}):\n{stack.log()[-3000:]}")
        time.sleep(0.2)
    raise TimeoutError(f"hub not ready in {timeout}s:\n{stack.log()[-3000:]}")


def stop_hub(stack: HubStack) -> None:
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGTERM)
        try:
            stack.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.proc.pid, signal.SIGKILL)
            stack.proc.wait(timeout=10)
    for pid in _singleuser_pids(stack.hub_dir):  # only servers this hub started
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def running_hub(
    hub_dir: Path, *launcher_args: str, env: dict[str, str] | None = None
) -> Iterator[HubStack]:
    stack = start_hub(hub_dir, *launcher_args, env=env)
    try:
        wait_ready(stack)
        yield stack
    finally:
        stop_hub(stack)


def oidc_login(stack: HubStack, user: str) -> requests.Session:
    """The real OAuth2 code flow: hub → provider's authorize form → hub callback."""
    session = requests.Session()
    page = session.get(f"{stack.url}/hub/oauth_login", timeout=30)
    assert page.url.startswith(f"{stack.oidc_url}/oauth2/authorize"), page.url
    assert "code_challenge=" in page.url  # PKCE, from OAuthenticator
    done = session.post(page.url, data={"sub": user}, timeout=30)
    assert done.status_code == 200, done.text[:500]
    assert done.url.startswith(f"{stack.url}/hub/"), done.url
    return session


def hub_xsrf(session: requests.Session) -> str:
    return next(c.value for c in session.cookies if c.name == "_xsrf" and c.path == "/hub/")


def post_spawn(
    session: requests.Session, stack: HubStack, user: str, form: dict[str, str]
) -> requests.Response:
    session.get(f"{stack.url}/hub/spawn/{user}", timeout=30)  # sets the hub _xsrf cookie
    return session.post(
        f"{stack.url}/hub/spawn/{user}",
        data={"_xsrf": hub_xsrf(session), **form},
        allow_redirects=False,
        timeout=60,
    )


def wait_for_lab(
    session: requests.Session, stack: HubStack, user: str, timeout: float = 60
) -> requests.Response:
    """Follow the hub until the user's JupyterLab page itself answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = session.get(f"{stack.url}/user/{user}/lab", timeout=30)
        if page.status_code == 200 and page.url == f"{stack.url}/user/{user}/lab":
            return page
        time.sleep(0.5)
    raise TimeoutError(f"JupyterLab for {user} not ready:\n{stack.log()[-3000:]}")


def error_text(page: requests.Response) -> str:
    """The message JupyterHub shows on a re-rendered spawn form."""
    match = re.search(r'class="spawn-error-msg alert alert-danger"[^>]*>(.*?)</p>', page.text, re.S)
    return re.sub(r"\s+", " ", match.group(1)).strip() if match else ""
