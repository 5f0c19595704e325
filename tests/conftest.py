"""Fixtures shared by the whole suite: a real jupyter server (pytest-jupyter), a private
KUBELAB_HOME, and a real Kubernetes API server (`k8s`, `k8s_namespace`: tests/k8s)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server", "k8s.plugin"]


@pytest.fixture(autouse=True)
def kubelab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own run store, artifacts and logs; ~/.kubelab is never touched."""
    home = tmp_path / "kubelab-home"
    home.mkdir()
    monkeypatch.setenv("KUBELAB_HOME", str(home))
    return home


@pytest.fixture
def kubelab_settings(request: pytest.FixtureRequest) -> dict:
    """`c.KubelabApp` settings of the test's jupyter server; parametrize it indirectly:
    `@pytest.mark.parametrize("kubelab_settings", [{...}], indirect=True)`."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def jp_server_config(kubelab_settings: dict) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"kubelab.server": True}},
        "KubelabApp": kubelab_settings,
    }


@pytest.fixture
def tiny_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    """Jobs of kind "training" run the tiny real workload of `tiny_workload.py`."""
    from tiny_workload import TinyWorkload

    from kubelab.workloads import registry

    monkeypatch.setitem(registry.WORKLOADS, "training", TinyWorkload)
    return "training"
