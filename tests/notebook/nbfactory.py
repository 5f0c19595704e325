"""Build small tagged notebooks for the notebook -> pipeline tests."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def build_notebook(*cells: tuple[str, ...] | str) -> nbformat.NotebookNode:
    """Each cell is ("source", "tag", ...) for code, or plain text for a markdown cell."""
    nb = new_notebook()
    for cell in cells:
        if isinstance(cell, str):
            nb.cells.append(new_markdown_cell(cell))
            continue
        source, *tags = cell
        code = new_code_cell(source)
        if tags:
            code.metadata["tags"] = list(tags)
        nb.cells.append(code)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb
