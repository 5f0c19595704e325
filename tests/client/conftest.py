"""Fixtures for the client layer: a Client on a private home and root."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelab.client import Client


@pytest.fixture
def client(kubelab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KUBELAB_KFP_ENDPOINT", raising=False)
    return Client(home=kubelab_home, root=tmp_path)
