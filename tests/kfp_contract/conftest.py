"""Fixtures: KFP's API server stand-in in single- and multi-user mode (`kfp_env.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from kfp_contract.kfp_env import Kfp, running_kfp, training_notebook


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    path = tmp_path / "root" / "train.ipynb"
    path.parent.mkdir(exist_ok=True)
    nbformat.write(training_notebook(), path)
    return path


@pytest.fixture(params=["single-user", "multi-user"])
def kfp(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    kubelab_home: Path,
    notebook: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Kfp]:
    multi_user = request.param == "multi-user"
    with running_kfp(multi_user, tmp_path, kubelab_home, notebook.parent, monkeypatch) as kfp:
        yield kfp


@pytest.fixture
def multi_user_kfp(
    tmp_path: Path, kubelab_home: Path, notebook: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Kfp]:
    with running_kfp(True, tmp_path, kubelab_home, notebook.parent, monkeypatch) as kfp:
        yield kfp
