"""Fixtures for the notebook -> pipeline tests: build small tagged notebooks on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbfactory import build_notebook

NotebookFactory = Callable[..., Path]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Generated modules go to a per-session temp dir, not the user's cache."""
    monkeypatch.setenv("KUBELAB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kubelab-cache"))
    # A developer's KUBELAB_PRELOAD must not change what the tests preload.
    monkeypatch.setenv("KUBELAB_PRELOAD", "")


@pytest.fixture
def make_notebook(tmp_path: Path) -> NotebookFactory:
    """make_notebook(("code", "step:a"), "markdown", ...) -> path of a written .ipynb."""
    counter = iter(range(1000))

    def make(*cells: tuple[str, ...] | str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"nb{next(counter)}.ipynb")
        nbformat.write(build_notebook(*cells), path)
        return path

    return make
