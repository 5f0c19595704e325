"""`kubelab.pipelines.local`: calling real DSL components and pipelines after init()."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from kubelab.client.store import RunStore
from kubelab.pipelines import compiler, dsl, local
from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.local import engine, progress


@dsl.component
def add(a: int, b: int) -> int:
    print("adding", a, b)
    return a + b


@dsl.component
def write_text(text: str, data: dsl.Output[dsl.Dataset], metrics: dsl.Output[dsl.Metrics]):
    with open(data.path, "w") as f:
        f.write(text)
    data.metadata["length"] = len(text)
    metrics.log_metric("length", len(text))


@dsl.component
def read_text(data: dsl.Input[dsl.Dataset]) -> str:
    with open(data.path) as f:
        return f.read().upper()


@dsl.component
def fail(message: str):
    raise RuntimeError(message)


@dsl.component
def nap(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@dsl.component
def report_pid(path: str):
    import os
    import time

    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)


@dsl.component
def collector_state() -> str:
    import gc

    return f"enabled={gc.isenabled()} frozen={gc.get_freeze_count() > 0}"


@dsl.component(packages_to_install=["numpy"])
def with_numpy(n: int) -> float:
    import numpy as np

    return float(np.arange(n).sum())


@dsl.component(packages_to_install=["tabulate"])
def with_tabulate(n: int) -> str:
    import sys

    import tabulate

    print("interpreter", sys.executable)
    return tabulate.tabulate([[n, n * n]], tablefmt="plain")


@dsl.pipeline(name="text-flow")
def text_flow(text: str = "hello") -> str:
    made = write_text(text=text)
    return read_text(data=made.outputs["data"]).output


@dsl.pipeline(name="sum-of-three")
def sum_of_three(a: int, b: int, c: int) -> int:
    return add(a=add(a=a, b=b).output, b=c).output


@dsl.pipeline(name="naps")
def naps(n: float = 0.5):
    for _ in range(4):
        nap(seconds=n)


@dsl.pipeline(name="pid")
def pid_pipeline(path: str):
    report_pid(path=path)


@dsl.pipeline(name="uncached")
def uncached(a: int = 1) -> int:
    first = add(a=a, b=1)
    return add(a=first.output, b=1).set_caching_options(False).output


@dsl.pipeline(name="chain10")
def chain10(x: int = 0) -> int:
    t = add(a=x, b=1)
    for _ in range(9):
        t = add(a=t.output, b=1)
    return t.output


def test_calling_without_init_says_what_to_do() -> None:
    local._reset()
    with pytest.raises(KubelabError, match=r"local\.init"):
        add(a=1, b=2)


def test_docker_runner_is_a_clear_error() -> None:
    with pytest.raises(KubelabError, match="no Docker engine"):
        local.init(runner=local.DockerRunner())


def test_component_call_returns_values(session: RunStore, capsys: pytest.CaptureFixture) -> None:
    task = add(a=1, b=2)
    assert task.output == 3
    assert task.outputs == {"Output": 3}
    assert "[add] adding 1 2" in capsys.readouterr().out  # the user's print, as kfp.local shows


def test_artifact_outputs_are_artifact_objects(session: RunStore) -> None:
    task = write_text(text="abc")
    data = task.outputs["data"]
    assert isinstance(data, dsl.Dataset)
    assert Path(data.path).read_text() == "abc"
    assert data.metadata == {"length": 3}
    assert task.outputs["metrics"].metadata == {"length": 3}
    with pytest.raises(AttributeError, match="several outputs"):
        _ = task.output


def test_pipeline_call_returns_pipeline_output(session: RunStore) -> None:
    assert text_flow(text="shout").output == "SHOUT"
    run = session.list_runs()[0]
    assert run["metrics"] == {"length": 5}
    assert sum_of_three(a=1, b=2, c=3).output == 6


def test_second_call_is_cached(session: RunStore) -> None:
    sum_of_three(a=5, b=5, c=5)
    sum_of_three(a=5, b=5, c=5)
    steps = session.list_runs()[0]["steps"]
    assert [s["cached"] for s in steps] == [True, True]


def test_failure_raises_or_returns(session: RunStore, tmp_path: Path) -> None:
    with pytest.raises(KubelabError, match="RuntimeError: broken input"):
        fail(message="broken input")
    local.init(pipeline_root=str(tmp_path / "o2"), raise_on_error=False, store=session)
    task = fail(message="again")
    assert task.state == "failed"
    assert task.outputs == {}


def test_python_tasks_run_in_parallel(session: RunStore, tmp_path: Path) -> None:
    ir = compiler.build_pipeline_spec(naps)
    t0 = time.monotonic()
    result = engine.run_pipeline(
        ir,
        {"n": 0.5},
        store=session,
        pipeline_root=tmp_path / "o",
        parallelism=4,
        enable_caching=False,
    )
    elapsed = time.monotonic() - t0
    assert result.state == "succeeded", result.error
    assert elapsed < 1.6, f"4 x 0.5 s Python tasks with parallelism 4 took {elapsed:.2f}s"


def test_warm_worker_keeps_per_task_overhead_low(session: RunStore, tmp_path: Path) -> None:
    ir = compiler.build_pipeline_spec(chain10)
    engine.run_pipeline(
        ir, {"x": -1}, store=session, pipeline_root=tmp_path / "o", enable_caching=False
    )  # warm-up
    t0 = time.monotonic()
    result = engine.run_pipeline(
        ir, {"x": 0}, store=session, pipeline_root=tmp_path / "o", enable_caching=False
    )
    per_task = (time.monotonic() - t0) / 10
    assert result.outputs == {"Output": 10}
    # A new interpreter per task costs >= 100 ms here; the forked worker a few ms.
    assert per_task < 0.1, f"{per_task * 1000:.0f} ms per task"


def test_tasks_fork_from_a_frozen_heap_with_the_collector_on(session: RunStore) -> None:
    """The fork server imports with the garbage collector off, then freezes what it
    imported: a task collects its own garbage as usual, but never walks (and so never
    copies on write) the heap it inherited."""
    assert collector_state().output == "enabled=True frozen=True"


def test_a_worker_that_dies_starting_up_fails_the_task_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubelab.pipelines.local import workers

    monkeypatch.setattr(workers.sys, "executable", "false")  # exits 1 whatever its arguments
    server = workers.ForkServer()
    server.start()  # returns at once: it does not wait for the server to be ready
    started = time.monotonic()
    with pytest.raises(KubelabError, match=r"exited as it started \(code 1\)"):
        server.run({"log_path": os.devnull})
    assert time.monotonic() - started < 5  # not the 60 s start-up timeout
    server.close()


def test_cancel_kills_the_python_task_process(session: RunStore, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    ir = compiler.build_pipeline_spec(pid_pipeline)
    run_id = engine.start_run(
        ir, {"path": str(pid_file)}, store=session, pipeline_root=tmp_path / "o"
    )
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    engine.cancel_run(run_id)
    result = engine.wait_run(run_id, timeout=10)
    assert result is not None and result.state == "cancelled"
    deadline = time.monotonic() + 5
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the task process survived cancel"
        time.sleep(0.05)


def test_installed_packages_do_not_build_a_venv(session: RunStore, kubelab_home: Path) -> None:
    assert with_numpy(n=4).output == 6.0
    assert not (kubelab_home / "venvs").exists()


def test_terminal_progress_lines() -> None:
    stream = io.StringIO()
    show = progress.TerminalProgress(stream)
    show(
        {
            "type": "task",
            "run_id": "r",
            "name": "train",
            "display_name": "train",
            "state": "pending",
        }
    )
    show({"type": "task", "run_id": "r", "name": "train", "state": "running"})
    show({"type": "task", "run_id": "r", "name": "train", "state": "succeeded", "cached": 1})
    show({"type": "run", "run_id": "r", "state": "succeeded"})
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("train: running")
    assert "train: succeeded (cached)" in lines[1]
    assert lines[2] == "run r succeeded"
    assert progress.notebook_progress("x") is None  # no Jupyter kernel under pytest


def test_notebook_widget_renders_steps() -> None:
    widget = progress.NotebookProgress("demo")
    widget(
        {"type": "task", "run_id": "r1", "name": "prep", "display_name": "prep", "state": "pending"}
    )
    widget({"type": "task", "run_id": "r1", "name": "prep", "state": "succeeded", "cached": 1})
    widget(
        {
            "type": "task",
            "run_id": "r1",
            "name": "fit",
            "display_name": "fit",
            "state": "failed",
            "error": "boom <b>",
        }
    )
    html = widget.widget.value
    assert "prep" in html and "succeeded (cached)" in html
    assert "boom &lt;b&gt;" in html


def test_missing_package_gets_a_cached_layered_venv(session: RunStore, kubelab_home: Path) -> None:
    """tabulate is not in the kubelab venv: the task installs it into a venv of its own,
    built once and reused, while the current interpreter's packages stay importable."""
    pytest.importorskip("pip")
    with pytest.raises(ImportError):
        __import__("tabulate")
    assert with_tabulate(n=3).output == "3  9"
    venvs = list((kubelab_home / "venvs").iterdir())
    assert len(venvs) == 1
    t0 = time.monotonic()
    assert with_tabulate(n=4).output == "4  16"
    assert time.monotonic() - t0 < 2.0  # no second install
    assert list((kubelab_home / "venvs").iterdir()) == venvs
    run = session.list_runs()[0]
    log = Path(session.task_info(run["id"], "with-tabulate")["log_path"]).read_text()
    assert f"interpreter {venvs[0]}" in log


def test_set_caching_options_false_is_never_cached(session: RunStore) -> None:
    """KFP writes set_caching_options(False) as `cachingOptions: {}` (proto JSON drops false)."""
    ir = compiler.build_pipeline_spec(uncached)
    assert ir["root"]["dag"]["tasks"]["add-2"]["cachingOptions"] == {}
    uncached(a=7)
    uncached(a=7)
    cached = {s["name"]: s["cached"] for s in session.list_runs()[0]["steps"]}
    assert cached == {"add": True, "add-2": False}


@dsl.component
def chatty(n: int):
    import time

    for i in range(n):
        print("line", i, flush=True)
        time.sleep(0.3)


@dsl.pipeline(name="chatty")
def chatty_pipeline(n: int = 4):
    chatty(n=n)


def test_log_streamer_prints_lines_while_the_task_runs(session: RunStore, tmp_path: Path) -> None:
    stream = io.StringIO()
    ir = compiler.build_pipeline_spec(chatty_pipeline)
    run_id = engine.start_run(
        ir,
        {"n": 4},
        store=session,
        pipeline_root=tmp_path / "o",
        on_event=progress.LogStreamer(stream, poll_s=0.05),
    )
    deadline = time.monotonic() + 20
    while "[chatty] line 0" not in stream.getvalue():
        assert time.monotonic() < deadline, stream.getvalue()
        time.sleep(0.02)
    assert "line 3" not in stream.getvalue()  # seen live, not after the fact
    result = engine.wait_run(run_id, timeout=20)
    assert result is not None and result.state == "succeeded"
    assert stream.getvalue().splitlines() == [f"[chatty] line {i}" for i in range(4)]


def test_artifact_object_as_argument(session: RunStore, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("hey")
    assert read_text(data=dsl.Dataset(uri=str(source))).output == "HEY"
