"""`kubelab run / compile NOTEBOOK.ipynb`: tagged cells run as steps, cells recorded per step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

from kubelab.client.store import RunStore


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()

    def cell(source: str, *tags: str) -> nbformat.NotebookNode:
        c = nbformat.v4.new_code_cell(source)
        c.metadata["tags"] = list(tags)
        return c

    nb.cells = [
        cell("import math", "imports"),
        cell("n = 3", "pipeline-parameters"),
        cell("xs = [i * i for i in range(n)]", "step:make"),
        cell("total = sum(xs)\nprint('total is', total)", "step:add"),
        cell("score = math.sqrt(total)", "step:score"),
        cell("score", "pipeline-metrics"),
    ]
    nbformat.write(nb, path)


def kubelab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubelab.client.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_run_notebook_records_cells_and_metrics(tmp_path: Path) -> None:
    _notebook(tmp_path / "demo.ipynb")
    result = kubelab("run", "demo.ipynb", "-p", "n=4", "--output", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["state"] == "succeeded"
    assert summary["metrics"] == {"score": 14**0.5}  # 0 + 1 + 4 + 9
    run = RunStore().get_run(summary["run_id"])
    assert run["source"] == str(tmp_path / "demo.ipynb")
    cells = {s["name"]: s["cells"] for s in run["steps"]}
    assert cells["add"] == [3]
    logs = kubelab("runs", "logs", summary["run_id"], "add", cwd=tmp_path)
    assert "total is 14" in logs.stdout
    bad = kubelab("run", "demo.ipynb", "-p", "m=1", cwd=tmp_path)
    assert bad.returncode == 2 and "valid parameters: n" in bad.stderr


def test_compile_notebook_to_yaml(tmp_path: Path) -> None:
    _notebook(tmp_path / "demo.ipynb")
    result = kubelab("compile", "demo.ipynb", "-o", "out.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spec = yaml.safe_load((tmp_path / "out.yaml").read_text())
    assert spec["schemaVersion"] == "2.1.0"
    assert {"make", "add", "score"} <= set(spec["root"]["dag"]["tasks"])


def test_run_says_where_a_step_failed_and_warns_about_gpus(tmp_path: Path, monkeypatch) -> None:
    """Issue 8: the last line names step, cell and line; a GPU step on a machine without
    GPUs runs on the CPU with a warning, or is refused with --strict-resources."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in ("x = 0", "y = 1\nz = y / x", "w = z")]
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("the division"))
    for c, tags in zip([nb.cells[0], nb.cells[2], nb.cells[3]],
                       [["step:a", "limit:nvidia.com/gpu:2"], ["step:b"], ["step:c"]],
                       strict=True):  # fmt: skip
        c.metadata["tags"] = tags
    nbformat.write(nb, tmp_path / "nb.ipynb")
    result = kubelab("run", "nb.ipynb", "--no-cache", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    run_line = next(line for line in lines if line.startswith("run "))
    # The 3rd cell (index 2), counted from 1 as JupyterLab counts cells.
    assert run_line.endswith(
        "failed: step b failed in cell 3, line 2: ZeroDivisionError: division by zero"
    )
    assert lines[-1].startswith("details: kubelab runs show ")
    assert sum("c: skipped" in line for line in lines) == 1
    [warning] = [line for line in lines if "warning" in line]
    assert "step 'a' asks for 2 nvidia.com/gpu but this machine has 0" in warning
    shown = kubelab("runs", "show", run_line.split()[1], cwd=tmp_path).stdout
    assert "warning step 'a' asks for 2 nvidia.com/gpu" in shown
    assert "failed in cell 3, line 2: ZeroDivisionError" in shown
    assert "saved 1" in shown  # `x` went from a to b: the marshalling figures are shown
    strict = kubelab("run", "nb.ipynb", "--no-cache", "--strict-resources", cwd=tmp_path)
    assert strict.returncode == 1 and "requests 2 nvidia.com/gpu" in strict.stderr
