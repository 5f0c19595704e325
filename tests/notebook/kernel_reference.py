"""The reference every notebook-pipeline test compares with: the notebook executed top
to bottom in a real Jupyter kernel (nbclient), as "Run All" would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient


def run_all_in_kernel(path: Path, names: list[str], timeout: int = 120) -> dict[str, Any]:
    """Execute every cell of the notebook in a fresh kernel (skip cells too, as Run All
    does) and return the JSON value of each variable in `names` afterwards."""
    nb = nbformat.read(path, as_version=4)
    probe = "import json as _j\nprint(_j.dumps({" + ", ".join(f"{n!r}: {n}" for n in names) + "}))"
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    printed = "".join(
        o.get("text", "") for o in nb.cells[-1].outputs if o["output_type"] == "stream"
    )
    return json.loads(printed.strip().splitlines()[-1])


def first_error_in_kernel(path: Path, timeout: int = 120) -> tuple[int, str, str]:
    """(cell index, exception name, message) of the first cell that raises when the
    notebook runs top to bottom in a fresh kernel."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                return index, output["ename"], output["evalue"]
    raise AssertionError(f"{path} ran without an error")
