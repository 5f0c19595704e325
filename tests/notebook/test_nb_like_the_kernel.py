"""Issue 8, problems 2-5: a notebook pipeline sees what the kernel sees (its folder's
modules and files), recomputes a step whose data file changed, runs GPU steps on a
laptop, and names the cell and line where a step failed."""

from __future__ import annotations

import os
from pathlib import Path

from kernel_reference import first_error_in_kernel, run_all_in_kernel
from same_as_kernel import assert_same_as_kernel

from kubelab.client.store import RunStore
from kubelab.pipelines.notebook import run_notebook


def test_modules_beside_the_notebook_import_in_every_step(make_notebook, tmp_path):
    path = make_notebook(
        ("from helpers import scale", "imports"),
        ("import shapes\nsides = shapes.SIDES", "step:load"),
        ("area = scale(sides) * 2", "step:use"),
        ("area", "pipeline-metrics"),
    )
    (path.parent / "helpers.py").write_text("def scale(v):\n    return v * 10\n")
    (path.parent / "shapes.py").write_text("SIDES = 4\n")
    assert Path.cwd() != path.parent  # the run starts elsewhere, as `kubelab run` may
    assert_same_as_kernel(path, tmp_path / "out", ["area"])


def _steps(result) -> dict:
    return {s["display_name"]: s for s in result.run()["steps"]}


def test_editing_a_data_file_recomputes_the_step_that_read_it(make_notebook, tmp_path):
    path = make_notebook(
        ("import csv", "imports"),
        ("with open('data.csv') as f:\n    total = sum(int(r['n']) for r in csv.DictReader(f))",
         "step:read"),
        ("base = 7", "step:other"),
        ("result = total + base", "step:combine"),
        ("result", "pipeline-metrics"),
    )  # fmt: skip
    data = path.parent / "data.csv"
    data.write_text("n\n1\n2\n")
    out = tmp_path / "out"
    first = run_notebook(path, pipeline_root=out)
    assert first.succeeded and first.run()["metrics"] == {"result": 10.0}
    again = run_notebook(path, pipeline_root=out)
    assert all(s["cached"] for s in again.run()["steps"])  # nothing changed: all cached
    data.write_text("n\n1\n2\n30\n")
    edited = run_notebook(path, pipeline_root=out)
    assert edited.succeeded, edited.error
    cached = {name: s["cached"] for name, s in _steps(edited).items()}
    assert cached == {"read": False, "other": True, "combine": False, "pipeline-metrics": False}
    kernel = run_all_in_kernel(path, ["result"])
    assert edited.run()["metrics"] == {"result": float(kernel["result"])} == {"result": 40.0}
    # A cached step shows the log of the run that computed it.
    other = RunStore().task_info(edited.run_id, "other")
    assert other["log_path"] == RunStore().task_info(first.run_id, "other")["log_path"]


def test_editing_a_module_beside_the_notebook_recomputes_the_steps_that_import_it(
    make_notebook, tmp_path
):
    path = make_notebook(
        ("value = 1", "step:a"),
        ("from rate import RATE\nscaled = value * RATE", "step:b"),
        ("scaled", "pipeline-metrics"),
    )
    module = path.parent / "rate.py"
    module.write_text("RATE = 2\n")
    out = tmp_path / "out"
    assert run_notebook(path, pipeline_root=out).run()["metrics"] == {"scaled": 2.0}
    module.write_text("RATE = 5  # changed\n")
    edited = run_notebook(path, pipeline_root=out)
    assert {n: s["cached"] for n, s in _steps(edited).items()} == {
        "a": True, "b": False, "pipeline-metrics": False,
    }  # fmt: skip
    assert edited.run()["metrics"] == {
        "scaled": float(run_all_in_kernel(path, ["scaled"])["scaled"])
    }


def test_a_gpu_step_runs_on_a_laptop_with_a_warning(make_notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    path = make_notebook(
        ("import os", "imports"),
        ("n = 3", "pipeline-parameters"),
        ("weights = [i * 0.5 for i in range(n)]", "step:train", "limit:nvidia.com/gpu:2"),
        ("total = sum(weights)", "step:evaluate"),
        ("total", "pipeline-metrics"),
    )
    result = assert_same_as_kernel(path, tmp_path / "out", ["total"])
    run = result.run()
    [warning] = run["warnings"]
    assert "step 'train' asks for 2 nvidia.com/gpu" in warning and "runs on the CPU" in warning
    assert _steps(result)["train"]["warnings"] == [warning]
    assert _steps(result)["evaluate"]["warnings"] == []
    strict = run_notebook(path, pipeline_root=tmp_path / "out", strict_resources=True,
                          enable_caching=False)  # fmt: skip
    assert strict.state == "failed" and "requests 2 nvidia.com/gpu" in strict.error


def test_a_failing_step_names_the_cell_and_line_the_kernel_fails_in(make_notebook, tmp_path):
    path = make_notebook(
        ("x = 0", "step:a"),
        "some markdown",
        ("y = 1\nz = y / x", "step:b"),
        ("w = z", "step:c"),
    )
    result = run_notebook(path, pipeline_root=tmp_path / "out", enable_caching=False)
    cell, name, message = first_error_in_kernel(path)
    assert (cell, name) == (2, "ZeroDivisionError")
    # The index, counted from 1 in the message as JupyterLab counts cells.
    expected = f"failed in cell {cell + 1}, line 2: {name}: {message}"
    assert result.state == "failed"
    assert result.error == f"step b {expected}"
    steps = _steps(result)
    assert steps["b"]["error"] == expected
    assert steps["b"]["failed_at"] == {"cell": cell, "line": 2}
    assert steps["c"]["state"] == "skipped"
    assert os.path.exists(RunStore().task_info(result.run_id, "b")["log_path"])
