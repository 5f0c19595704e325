"""Real-browser fixtures: a JupyterLab server process and headless Debian Chromium via Playwright.

Chromium comes from Debian (`/usr/bin/chromium`); Playwright never downloads a browser.
Screenshots go to ui-tests/output/ (not committed).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

OUTPUT_DIR = Path(__file__).parent / "output"
CHROMIUM = os.environ.get("KUBELAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"server exited with code {process.returncode} before answering {url}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


@dataclass
class LabServer:
    url: str
    token: str
    root_dir: Path
    log_path: Path

    def lab_url(self, path: str = "lab") -> str:
        return f"{self.url}{path}?token={self.token}"


def quiet_lab_settings(settings_dir: Path) -> None:
    """Fresh profiles pop up 'Jupyter news' and, once a kernel ran, a 'Select Kernel'
    dialog for notebooks without a kernelspec; both would block clicks in later tests."""
    settings = {
        ("apputils-extension", "notification"): {"fetchNews": "false", "checkForUpdates": False},
        ("notebook-extension", "tracker"): {"autoStartDefaultKernel": True},
    }
    for (extension, plugin), values in settings.items():
        target = settings_dir / "@jupyterlab" / extension
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values))


@contextmanager
def running_lab(base: Path, *options: str) -> Iterator[LabServer]:
    """JupyterLab with kubelab in `base`, the examples in its root; `options` are extra
    command-line settings (e.g. `--KubelabApp.kfp_endpoint=...`)."""
    root_dir = base / "work"
    root_dir.mkdir()
    settings_dir = base / "settings"
    quiet_lab_settings(settings_dir)
    examples = Path(__file__).parent.parent / "examples"
    for notebook in examples.glob("*.ipynb"):
        shutil.copy(notebook, root_dir / notebook.name)
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "KUBELAB_HOME": str(base / "kubelab-home"),
        "JUPYTER_TOKEN": token,
    }
    log_path = base / "lab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.news_url=",
        *options,
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(f"{url}api/status?token={token}", process=process)
        yield LabServer(url=url, token=token, root_dir=root_dir, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with running_lab(tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(autouse=True)
def shut_down_kernels(request):
    """Kernels our notebooks started would make later tests' notebooks ask which to use."""
    yield
    if "lab_server" not in request.fixturenames:
        return
    from lab_helpers import lab_api

    server = request.getfixturevalue("lab_server")
    for session in lab_api(server, "GET", "api/sessions"):
        lab_api(server, "DELETE", f"api/sessions/{session['id']}")


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(exist_ok=True)
    return OUTPUT_DIR
