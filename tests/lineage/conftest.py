"""Fixtures for lineage: a Client on a private home and root, and small tagged notebooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelab.client import Client


@pytest.fixture
def client(kubelab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Client:
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("KUBELAB_KFP_ENDPOINT", raising=False)
    return Client(home=kubelab_home, root=root)
