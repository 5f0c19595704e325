"""A warm fork server for Python component tasks (runs as its own process).

Started once per engine with `python -m kubelab.pipelines.local.forkserver MODULE...`:
it imports the executor (and optional heavy modules) once, then forks one fresh
child per task. A fork costs a few milliseconds where a new interpreter plus imports
costs hundreds, and each task still gets its own process that can be killed.
We do not use multiprocessing's forkserver because its children re-import the
parent's `__main__` (a notebook kernel, a CLI, a benchmark script) for every task.

A payload with `argv` execs that command instead (container components, cached
venvs), so every task process is a child of this server. A payload with `entry`
("module:function") calls that function with the payload instead of running a
component: other local runners (e.g. the trainer's nodes) share the warm server.

Protocol, JSON lines: stdin gets `{"id", "payload"}` (or `{"preload": [modules]}`
to import more modules before later forks); stdout answers
`{"id", "pid"}` after the fork and `{"id", "exit"}` when the child ends.
`--run PAYLOAD.json` runs one task in this interpreter (used for cached venvs).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import sys
import traceback
from typing import Any


def run_task(payload: dict[str, Any]) -> int:
    """Run one Python component in the current process; returns the exit code.

    Output goes to payload["log_path"] (already open on fds 1 and 2 when forked) and
    the ExecutorOutput (or the error) to payload["result_path"], with what the task
    reported (`task_report`: warnings, marshalling figures, files it read).
    """
    from kubelab.pipelines import task_report

    os.environ.update(payload.get("env") or {})
    if payload.get("cwd"):
        os.chdir(payload["cwd"])
        task_report.watch_reads(payload["cwd"], exclude=payload.get("pipeline_root"))
    result: dict[str, Any]
    code = 0
    try:
        if payload.get("kfp_source"):
            _alias_kfp()
        from kubelab.pipelines import executor_main

        output = executor_main.execute(
            payload["executor_input"], payload["source"], payload["function_name"]
        )
        result = {"output": output or {}}
    except BaseException as error:
        if isinstance(error, SystemExit) and error.code in (0, None):
            result = {"output": {}}
        else:
            traceback.print_exc()
            message = getattr(error, "message", None)  # a KubelabError is already phrased
            message = message or f"{type(error).__name__}: {error}"
            # Set by the notebook runtime: the cell and line where the user should look.
            where = getattr(error, "kubelab_where", None)
            result = {"error": message}
            if where:
                line = f", line {where['line']}" if where.get("line") else ""
                # `cell` is an index; people count cells from 1, as JupyterLab does.
                result = {"error": f"failed in cell {where['cell'] + 1}{line}: {message}"}
                result["where"] = where
            code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    try:
        report = task_report.collect()
    except Exception as error:  # the report is extra: never fail a task for it
        report = {"warnings": [f"kubelab could not collect the task report: {error}"]}
    if report:
        result["report"] = report
    tmp = payload["result_path"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, default=str)
    os.replace(tmp, payload["result_path"])
    return code


def _alias_kfp() -> None:
    """Let source compiled by the kfp SDK (`from kfp import dsl`) run on kubelab's DSL,
    which has the same surface, unless the real kfp SDK is installed here."""
    import importlib.util
    import types

    try:
        if importlib.util.find_spec("kfp.dsl") is not None:
            return
    except ImportError:
        pass
    import kubelab.pipelines.dsl

    try:
        # kfp-pipeline-spec alone makes `kfp` a namespace package; keep it importable.
        kfp = importlib.import_module("kfp")
    except ImportError:
        kfp = types.ModuleType("kfp")
        sys.modules["kfp"] = kfp
    kfp.dsl = kubelab.pipelines.dsl  # type: ignore[attr-defined]
    sys.modules["kfp.dsl"] = kubelab.pipelines.dsl


def _redirect_output(log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # Line-buffered so the log can be followed while the task runs.
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _child(payload: dict[str, Any], proto_fds: tuple[int, ...]) -> None:
    try:
        os.setsid()  # own process group: cancel kills the task and anything it spawned
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        for fd in proto_fds:
            os.close(fd)
        _redirect_output(payload["log_path"])
        if "argv" in payload:
            _exec_command(payload)  # does not return
        if "entry" in payload:
            module_name, _, function = payload["entry"].partition(":")
            code = int(getattr(importlib.import_module(module_name), function)(payload) or 0)
        else:
            code = run_task(payload)
    except BaseException:
        code = 1
    os._exit(code)


def _exec_command(payload: dict[str, Any]) -> None:
    """Become a host command (container components, venv interpreters): same process
    group, log and kill path as Python tasks, and it dies with the engine too."""
    argv = payload["argv"]
    env = {**os.environ, **(payload.get("env") or {})}
    try:
        if payload.get("cwd"):
            os.chdir(payload["cwd"])
        os.execvpe(argv[0], argv, env)
    except OSError as error:
        print(f"kubelab: cannot start {argv[0]!r}: {error.strerror}", file=sys.stderr, flush=True)
        os._exit(127)


def import_ahead(names: list[str]) -> None:
    """Import `names` once so that every later fork inherits them.

    A module that fails to import only costs speed. The cyclic garbage collector is off
    while importing: imports allocate millions of long-lived objects and trigger full
    collections over them (numpy, pandas and sklearn import ~10% faster here). What was
    imported is then frozen (`gc.freeze`), so a child's collections never walk, and
    copy-on-write, the server's heap.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        for name in names:
            with contextlib.suppress(BaseException):
                importlib.import_module(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def serve(preload: list[str]) -> None:
    import_ahead(preload)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, Any] = {}
    buffer = b""
    stdin_fd, stdout_fd = 0, 1

    def send(message: dict[str, Any]) -> None:
        os.write(stdout_fd, (json.dumps(message) + "\n").encode())

    send({"ready": True})
    open_input = True
    while open_input or children:
        try:
            readable, _, _ = select.select(
                [stdin_fd, wake_r] if open_input else [wake_r], [], [], 1.0
            )
        except InterruptedError:
            readable = []
        if wake_r in readable:
            os.read(wake_r, 4096)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            task_id = children.pop(pid, None)
            if task_id is not None:
                send({"id": task_id, "exit": os.waitstatus_to_exitcode(status)})
        if open_input and stdin_fd in readable:
            chunk = os.read(stdin_fd, 1 << 16)
            if not chunk:
                # The engine is gone (exited or crashed): its runs are over, and the store
                # will call them interrupted, so stop their tasks instead of orphaning them.
                open_input = False
                for pid in list(children):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
                continue
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                if "preload" in request:
                    import_ahead(request["preload"])  # what the next tasks will import
                    continue
                pid = os.fork()
                if pid == 0:
                    _child(request["payload"], (stdin_fd, stdout_fd, wake_r, wake_w))
                children[pid] = request["id"]
                send({"id": request["id"], "pid": pid})


def main(argv: list[str]) -> None:
    if argv[:1] == ["--run"]:
        with open(argv[1]) as f:
            payload = json.load(f)
        sys.exit(run_task(payload))
    # BrokenPipeError: the engine left before reading us (a CLI run refused its input
    # while this server was still warming up): nothing to report to, no traceback.
    with contextlib.suppress(BrokenPipeError):
        serve(argv)
    # Messages went out with os.write, so nothing is left to flush. Skipping the
    # interpreter's teardown of all that was preloaded frees the CPU at once instead of
    # after a few hundred ms (the next `kubelab run` would share the cores with it).
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
