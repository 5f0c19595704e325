"""A local run is "running" only while the process that owns it is alive, and it can
be cancelled from any process that shares the store.

The pod-restart cases run the owner in a fresh PID namespace (`unshare --pid`), as a
container does: there every process that starts first is PID 1, on the same hostname.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kubelab.client import Client, liveness
from kubelab.client.store import INTERRUPTED_ERROR, RunStore
from kubelab.pipelines.errors import ConflictError

OWNER = """
import sys, time
from kubelab.client.store import RunStore
store = RunStore(sys.argv[1])
store.create_run("p", {{}}, run_id="r1")
store.update_run("r1", state="running")
store.add_task("r1", "train"); store.update_task("r1", "train", state="running")
print("pid", __import__("os").getpid(), flush=True)
{after}
"""


def can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


needs_pid_namespace = pytest.mark.skipif(
    not can_unshare(), reason="needs `unshare --pid` (root or user namespaces)"
)


def in_new_pid_namespace(code: str, *args: str) -> subprocess.Popen[str]:
    """`python -c code args` as PID 1 of a new PID namespace, as in a fresh container."""
    unshare = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]
    return subprocess.Popen(
        [*unshare, sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def owners() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@needs_pid_namespace
def test_a_pod_restarted_with_the_same_hostname_and_pid_does_not_keep_old_runs_alive(
    tmp_path: Path, owners: list
) -> None:
    db = str(tmp_path / "kubelab.db")
    old_pod = in_new_pid_namespace(OWNER.format(after="time.sleep(300)"), db)
    owners.append(old_pod)
    assert old_pod.stdout is not None and old_pod.stdout.readline() == "pid 1\n"
    assert RunStore(db).get_run("r1")["state"] == "running"  # its owner is alive
    old_pod.kill()  # the pod goes away without a word
    old_pod.wait()
    # The new pod's server: same hostname, PID 1 again, another instance.
    new_pod = in_new_pid_namespace(
        "import os, sys, json\n"
        "from kubelab.client.store import RunStore\n"
        "assert os.getpid() == 1\n"
        "print(json.dumps(RunStore(sys.argv[1]).get_run('r1')))\n",
        db,
    )
    owners.append(new_pod)
    out, _ = new_pod.communicate(timeout=60)
    assert '"state": "failed"' in out and INTERRUPTED_ERROR in out
    run = RunStore(db).get_run("r1")
    assert run["state"] == "failed" and run["error"] == INTERRUPTED_ERROR
    assert run["steps"][0]["state"] == "failed"


@needs_pid_namespace
def test_a_run_whose_pid_now_belongs_to_another_process_ends_when_its_heartbeat_stops(
    tmp_path: Path, owners: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the host, the dead owner's PID (1) is alive: only the heartbeat tells."""
    db = str(tmp_path / "kubelab.db")
    owner = in_new_pid_namespace(OWNER.format(after="time.sleep(300)"), db)
    owners.append(owner)
    assert owner.stdout is not None and owner.stdout.readline() == "pid 1\n"
    store = RunStore(db)
    assert store.run_info("r1")["owner_pid"] == 1 and os.path.exists("/proc/1")
    owner.kill()
    owner.wait()
    assert store.get_run("r1")["state"] == "running"  # silent for less than STALE_AFTER_S
    monkeypatch.setattr(liveness, "STALE_AFTER_S", 0.5)
    monkeypatch.setattr(liveness, "HEARTBEAT_S", 0.1)
    time.sleep(0.6)
    run = store.get_run("r1")  # reading runs sweeps them
    assert run["state"] == "failed" and run["error"] == INTERRUPTED_ERROR


def test_an_owner_stamps_its_active_runs_and_stops_when_they_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(liveness, "HEARTBEAT_S", 0.05)
    store = RunStore(tmp_path / "kubelab.db")
    run_id = store.create_run("p", {})
    store.update_run(run_id, state="running")
    first = store.run_info(run_id)["heartbeat_at"]
    assert store.run_info(run_id)["owner_instance"] == liveness.instance_id()
    wait_for(lambda: store.run_info(run_id)["heartbeat_at"] > first, 5, "a heartbeat")
    store.update_run(run_id, state="succeeded")
    # Nothing left to stamp in this store: the heartbeat lets it go.
    wait_for(lambda: store not in liveness.heartbeat._stores, 5, "the heartbeat to stop")
    last = store.run_info(run_id)["heartbeat_at"]
    time.sleep(0.2)
    assert store.run_info(run_id)["heartbeat_at"] == last


def test_a_store_file_from_before_heartbeats_is_migrated(tmp_path: Path) -> None:
    """A store written before heartbeats: active runs of no known instance are interrupted
    once they are older than STALE_AFTER_S; finished ones are untouched."""
    import sqlite3

    db = tmp_path / "kubelab.db"
    RunStore(db).close()
    conn = sqlite3.connect(db)
    # Back to the previous schema version: no owner_instance / heartbeat_at columns.
    conn.executescript(
        "ALTER TABLE runs DROP COLUMN owner_instance; ALTER TABLE runs DROP COLUMN heartbeat_at;"
        "PRAGMA user_version=1;"
    )
    old = time.time() - 3600
    conn.execute(
        "INSERT INTO runs (id, name, state, created_at, owner_pid, owner_host) "
        "VALUES ('old', 'p', 'running', ?, 1, 'elsewhere')",
        (old,),
    )
    conn.execute(
        "INSERT INTO runs (id, name, state, created_at) VALUES ('done', 'p', 'succeeded', ?)",
        (old,),
    )
    conn.commit()
    conn.close()
    store = RunStore(db)
    columns = {row[1] for row in store._conn.execute("PRAGMA table_info(runs)")}
    assert {"owner_instance", "heartbeat_at"} <= columns
    assert store.get_run("old")["error"] == INTERRUPTED_ERROR
    assert store.get_run("done")["state"] == "succeeded"


# -- cancel across processes ------------------------------------------------------------


def cli_run_of_a_slow_step(
    folder: Path, owners: list, **popen: Any
) -> tuple[subprocess.Popen[str], int]:
    """`kubelab run` of a one-step notebook, once its step runs: (the CLI, the step's pid)."""
    notebook, pid_file = folder / "slow.ipynb", folder / "step.pid"
    cell = nbformat.v4.new_code_cell(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(120)\nx = 1"
    )
    cell.metadata["tags"] = ["step:wait"]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), notebook)
    cli = subprocess.Popen(
        [sys.executable, "-m", "kubelab.client.cli", "run", str(notebook), "--no-cache"],
        cwd=folder,
        text=True,
        **popen,
    )
    owners.append(cli)
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), 120, "the step to start")
    return cli, int(pid_file.read_text())


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_cancel_reaches_a_run_that_the_cli_is_running(
    tmp_path: Path, kubelab_home: Path, owners: list
) -> None:
    cli, step_pid = cli_run_of_a_slow_step(
        tmp_path, owners, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    client = Client(home=kubelab_home, root=tmp_path)
    (run,) = client.list_runs()
    assert run["state"] == "running"
    answer = client.cancel(run["id"])  # this process does not run it: the CLI does
    assert answer["id"] == run["id"]
    run = client.wait_for_run_completion(run["id"], timeout=30)
    assert run["state"] == "cancelled"
    assert run["steps"][0]["state"] == "cancelled"
    wait_for(lambda: pid_gone(step_pid), 10, "the step process to be killed")
    cli.wait(timeout=30)
    assert cli.stdout is not None and "cancelled" in cli.stdout.read()


def test_cancel_of_a_run_whose_engine_died_says_it_was_interrupted(
    tmp_path: Path, kubelab_home: Path, owners: list
) -> None:
    engine, _ = cli_run_of_a_slow_step(
        tmp_path, owners, stdout=subprocess.DEVNULL, start_new_session=True
    )
    os.killpg(engine.pid, signal.SIGKILL)  # the engine and its step die at once
    engine.wait()
    client = Client(home=kubelab_home, root=tmp_path)
    (run,) = client.list_runs()
    assert run["state"] == "failed" and run["error"] == INTERRUPTED_ERROR
    with pytest.raises(ConflictError, match="already finished"):
        client.cancel(run["id"])


def test_a_long_program_keeps_its_run_alive_across_many_heartbeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owners: list
) -> None:
    """An owner in another process, with short intervals there and here: its run stays
    running for many STALE_AFTER_S periods, then is interrupted soon after it dies."""
    db = str(tmp_path / "kubelab.db")
    code = textwrap.dedent(
        """
        import sys, time
        from kubelab.client import liveness
        liveness.HEARTBEAT_S, liveness.STALE_AFTER_S = 0.05, 0.5
        """
    ) + OWNER.format(after="time.sleep(300)")
    owner = subprocess.Popen([sys.executable, "-c", code, db], stdout=subprocess.PIPE, text=True)
    owners.append(owner)
    assert owner.stdout is not None and owner.stdout.readline().startswith("pid ")
    monkeypatch.setattr(liveness, "HEARTBEAT_S", 0.05)
    monkeypatch.setattr(liveness, "STALE_AFTER_S", 0.5)
    store = RunStore(db)
    for _ in range(20):
        assert store.get_run("r1")["state"] == "running"
        time.sleep(0.1)
    owner.send_signal(signal.SIGSTOP)  # alive but silent (a frozen pod)
    try:
        wait_for(lambda: store.get_run("r1")["state"] == "failed", 5, "the run to be interrupted")
    finally:
        owner.send_signal(signal.SIGCONT)
