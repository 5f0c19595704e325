"""Tagged notebooks for the lineage tests, written as Jupyter writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from kubelab.client import Client

# load reads a data file, train makes the model, evaluate scores it: three steps.
THREE_STEPS = [
    ("import numpy as np", "imports"),
    ("scale = 2.0\nseed = 0", "pipeline-parameters"),
    ('data = np.loadtxt("data.csv", delimiter=",")', "step:load"),
    ("model = data.mean(axis=0) * scale", "step:train"),
    ("score = float(model.sum())", "step:evaluate"),
]


def write_notebook(path: Path, cells: list[tuple[str, ...]]) -> Path:
    """Each cell is (source, tag, ...)."""
    nb = new_notebook()
    for source, *tags in cells:
        cell = new_code_cell(source)
        cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def three_step_notebook(folder: Path) -> Path:
    (folder / "data.csv").write_text("1,2\n3,4\n")
    return write_notebook(folder / "model.ipynb", THREE_STEPS)


def run(client: Client, source: Path, **kwargs: Any) -> dict[str, Any]:
    """Run to the end; the run JSON (asserting it succeeded)."""
    started = client.create_run_from_pipeline_package(source, **kwargs)
    finished = started.wait_for_run_completion(timeout=120)
    assert finished["state"] == "succeeded", finished
    return finished
