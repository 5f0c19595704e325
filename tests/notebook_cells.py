"""Notebook cells for tests that build tagged notebooks (the Kale-style tags of DESIGN.md)."""

from __future__ import annotations

import nbformat


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    """A code cell with `tags` in its metadata."""
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell
