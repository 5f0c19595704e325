"""Processes that run task code: the warm fork server and cached venvs.

Every task process (a forked Python task, a host command, a venv interpreter) is a
child of the fork server, in its own process group: one code path for logs,
timeouts, cancel, and clean-up when the engine dies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kubelab.pipelines import requirements
from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.requirements import PipInstall

DEFAULT_PRELOAD = ("kubelab.pipelines.executor_main", "kubelab.pipelines.local.forkserver")


class TaskProcess(Protocol):
    pid: int

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit code, or None if still running after `timeout` seconds."""

    def kill(self) -> None: ...


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass(eq=False)
class _ForkedTask:
    pid: int = 0
    exit_code: int | None = None
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None = None) -> int | None:
        self.done.wait(timeout)
        return self.exit_code

    def kill(self) -> None:
        self.started.wait(5)
        if self.pid and not self.done.is_set():
            _kill_group(self.pid)


class ForkServer:
    """Parent side of `forkserver.py`: sends payloads, collects pids and exit codes."""

    def __init__(self, preload: tuple[str, ...] = DEFAULT_PRELOAD) -> None:
        self.preload = preload
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._tasks: dict[int, _ForkedTask] = {}
        self._next_id = 0
        self._ready = threading.Event()
        self._preloaded: set[str] = set()
        self._wanted: set[str] = set()  # to import before the next fork

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._ready = threading.Event()  # this process's own: set by its reader thread
        self._preloaded = set()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "kubelab.pipelines.local.forkserver", *self.preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self._proc, self._ready), daemon=True).start()
        return self._proc

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        if not self._ready.wait(60):
            raise KubelabError("the kubelab worker process did not start within 60 s")
        if proc.poll() is not None:
            raise KubelabError(
                f"the kubelab worker process exited as it started (code {proc.returncode}); "
                f"try `{sys.executable} -m kubelab.pipelines.local.forkserver` to see why"
            )

    def start(self) -> None:
        """Warm the server up ahead of the first task, and have it import what it was
        asked to. Returns at once: the imports are queued behind the server's own start-up
        (requests are read in order), so the caller can work out more to import meanwhile.
        """
        with self._lock:
            self._send_wanted(self._ensure_started())

    def want_modules(self, modules: set[str]) -> None:
        """Import `modules` in the server before it forks the next task (no waiting here):
        a run asks this before its first task, so that task already starts warm."""
        with self._lock:
            self._wanted |= set(modules)

    def import_modules(self, modules: set[str]) -> None:
        """Have the server import `modules` now, so that tasks importing them start warm."""
        with self._lock:
            self._wanted |= set(modules)
            self._send_wanted(self._ensure_started())

    def _send_wanted(self, proc: subprocess.Popen[bytes]) -> None:
        new = sorted(self._wanted - self._preloaded)
        self._wanted.clear()
        if not new:
            return
        self._preloaded |= set(new)
        assert proc.stdin is not None
        try:
            proc.stdin.write((json.dumps({"preload": new}) + "\n").encode())
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # the server is gone; the next task's `_wait_ready` says so

    def _read(self, proc: subprocess.Popen[bytes], ready: threading.Event) -> None:
        try:
            self._read_messages(proc, ready)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)  # its output ended: it is exiting
        finally:
            ready.set()  # a server that died starting up fails `_wait_ready` at once
        # Server gone: fail whatever it was running rather than hang the run.
        with self._lock:
            orphans = list(self._tasks.values())
            self._tasks.clear()
        for task in orphans:
            if task.pid:
                _kill_group(task.pid)
            task.exit_code = -9 if task.exit_code is None else task.exit_code
            task.started.set()
            task.done.set()

    def _read_messages(self, proc: subprocess.Popen[bytes], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            message = json.loads(line)
            if message.get("ready"):
                ready.set()
                continue
            with self._lock:
                task = self._tasks.get(message["id"])
            if task is None:
                continue
            if "pid" in message:
                task.pid = message["pid"]
                task.started.set()
            if "exit" in message:
                task.exit_code = message["exit"]
                task.started.set()
                task.done.set()
                with self._lock:
                    self._tasks.pop(message["id"], None)

    def run(self, payload: dict[str, Any]) -> _ForkedTask:
        task = _ForkedTask()
        with self._lock:
            proc = self._ensure_started()
            self._wait_ready(proc)
            self._send_wanted(proc)  # the server reads requests in order: imports first
            self._next_id += 1
            task_id = self._next_id
            self._tasks[task_id] = task
            assert proc.stdin is not None
            proc.stdin.write((json.dumps({"id": task_id, "payload": payload}) + "\n").encode())
            proc.stdin.flush()
        return task

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)


def venv_task_argv(python: str, payload_path: str) -> list[str]:
    """The command that runs one Python task in another interpreter (a cached venv)."""
    return [python, "-m", "kubelab.pipelines.local.forkserver", "--run", payload_path]


# -- packages_to_install -----------------------------------------------------------


_venv_locks: dict[str, threading.Lock] = {}
_venv_locks_guard = threading.Lock()


def interpreter_for(pip: PipInstall, *, home: Path, log_path: str) -> str | None:
    """The Python a task runs in: None for this interpreter when it already satisfies
    every requirement (versions included), else a cached layered venv. Says in the task
    log what was not installed and why."""
    if pip.skipped:
        with open(log_path, "ab") as log:
            for requirement, why in pip.skipped:
                log.write(f"kubelab: not installing {requirement!r}: {why}\n".encode())
    if not pip.requirements or not requirements.missing(pip.requirements):
        return None
    return layered_venv(pip, home=home, log_path=log_path)


def layered_venv(pip: PipInstall, *, home: Path, log_path: str) -> str:
    """Python of a venv (cached per requirement set and package source) that adds the
    requirements on top of everything the current interpreter can import; built once,
    reused by later tasks. pip uses the component's own indexes (`pip_index_urls`), so a
    private package name never resolves on another index."""
    options = pip.pip_options()
    key_source = [sys.executable, sorted(pip.requirements), options]
    key = hashlib.sha256(json.dumps(key_source).encode()).hexdigest()[:16]
    root = home / "venvs" / key
    python = root / "bin" / "python"
    with _venv_locks_guard:
        lock = _venv_locks.setdefault(key, threading.Lock())
    with lock:
        if (root / ".complete").exists():
            return str(python)
        listed = " ".join(pip.requirements)
        with open(log_path, "ab") as log:
            where = f" ({' '.join(options)})" if options else ""
            log.write(f"kubelab: installing {listed} into {root}{where}\n".encode())
            log.flush()
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
            site = subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            # A .pth appends the current interpreter's paths *after* the venv's own
            # site-packages, so new versions win and everything else stays importable.
            parent_paths = [p for p in sys.path if p and os.path.isdir(p)]
            Path(site, "_kubelab_parent.pth").write_text("\n".join(parent_paths) + "\n")
            started = time.monotonic()
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--target",
                    site,
                    "--upgrade",
                    *options,
                    *pip.requirements,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.write(f"kubelab: pip finished in {time.monotonic() - started:.1f}s\n".encode())
        if result.returncode != 0:
            raise KubelabError(
                f"pip could not install {', '.join(pip.requirements)} (see the task log {log_path})"
            )
        (root / ".complete").touch()
    return str(python)
