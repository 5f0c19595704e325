"""Run-from inside conditions and loops, the terminal progress, and tasks without CPU
limits running side by side by default (issue 8)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from local_ir_helpers import PipelineBuilder, shell_component

from kubelab.client.store import RunStore
from kubelab.pipelines import compiler, dsl
from kubelab.pipelines.local.engine import downstream_tasks, run_pipeline, start_from_task
from kubelab.pipelines.local.progress import TerminalProgress


@dsl.component
def make(x: int) -> int:
    return x + 1


@dsl.component
def double(x: int) -> int:
    return x * 2


@dsl.pipeline(name="nested")
def nested(x: int = 1) -> None:
    m = make(x=x)
    with dsl.If(m.output > 0):
        d = double(x=m.output)
        double(x=d.output)
    with dsl.ParallelFor([1, 2]) as item:
        f = double(x=item)
        make(x=f.output)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs.db")


def _cached(result) -> dict[str, bool]:
    return {s["name"]: s["cached"] for s in result.run()["steps"] if "/" in s["name"] or
            s["name"] == "make"}  # fmt: skip


def test_run_from_reruns_tasks_nested_in_conditions_and_loops(store, tmp_path):
    ir = compiler.build_pipeline_spec(nested)
    options = {"store": store, "pipeline_root": tmp_path / "out"}
    assert run_pipeline(ir, {"x": 1}, **options).succeeded
    # From the first task: everything after it re-runs, inside the condition too.
    again = start_from_task(ir, {"x": 1}, "make", **options)
    cached = _cached(again)
    assert cached["make"] is False
    assert cached["condition-1/double"] is False and cached["condition-1/double-2"] is False
    assert cached["for-loop-3[0]/double-3"] is True  # the loop does not read `make`
    # From a task inside the condition: it and what follows it there.
    assert downstream_tasks(ir, "condition-1/double") == {
        "condition-1/double", "condition-1/double-2",
    }  # fmt: skip
    inner = _cached(start_from_task(ir, {"x": 1}, "condition-1/double", **options))
    assert inner["make"] is True and inner["condition-1/double"] is False
    assert inner["condition-1/double-2"] is False and inner["for-loop-3[1]/make-2"] is True
    # From a task inside a loop: in every iteration.
    looped = _cached(start_from_task(ir, {"x": 1}, "for-loop-3[0]/double-3", **options))
    assert looped["make"] is True and looped["condition-1/double"] is True
    assert {looped[f"for-loop-3[{i}]/{t}"] for i in (0, 1) for t in ("double-3", "make-2")} == {
        False
    }


def test_terminal_progress_prints_each_skipped_step_once(store, tmp_path):
    p = PipelineBuilder("skips")
    fail = p.component("fail", shell_component("exit 3"))
    ok = p.component("ok", shell_component("true"))
    p.task("first", fail)
    p.task("second", ok, dependentTasks=["first"])
    p.task("third", ok, dependentTasks=["second"])
    stream = io.StringIO()
    result = run_pipeline(
        p.spec, store=store, pipeline_root=tmp_path / "out", on_event=TerminalProgress(stream)
    )
    assert result.state == "failed"
    lines = stream.getvalue().splitlines()
    assert sum("second: skipped" in line for line in lines) == 1
    assert sum("third: skipped" in line for line in lines) == 1


def test_tasks_without_cpu_limits_run_side_by_side_by_default(store, tmp_path):
    """16 independent 1-second tasks on a 2-CPU machine take about 1 s, not 8 s."""
    p = PipelineBuilder("fan-out")
    sleep = p.component("sleep", shell_component("sleep 1"))
    for i in range(16):
        p.task(f"t{i}", sleep, cachingOptions={})
    started = time.monotonic()
    result = run_pipeline(p.spec, store=store, pipeline_root=tmp_path / "out")
    assert result.succeeded
    assert time.monotonic() - started < 6  # one at a time per CPU would take >= 8 s
