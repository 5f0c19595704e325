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
