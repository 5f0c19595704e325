"""The Kubeflow Pipelines test environment: KFP's API server stand-in (`kfp_stub.py`) in
single- or multi-user mode, and what a notebook pod in a Kubeflow profile has (its
ServiceAccount namespace file, its projected token file)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kfp_contract.kfp_stub import KfpStub
from notebook_cells import code

from kubelab.client import Client
from kubelab.client.backends import kubeflow

NAMESPACE = "team-a"
USER = "alice@example.com"


def training_notebook() -> nbformat.NotebookNode:
    """load -> (features, baseline) -> train, with a parameter, a CPU limit and a metric."""
    return nbformat.v4.new_notebook(
        cells=[
            code("import statistics", "imports"),
            code("rows = 8", "pipeline-parameters"),
            code("data = [float(i) for i in range(rows)]", "step:load"),
            code("features = [x / max(data) for x in data]", "step:features", "limit:cpu:1"),
            code("baseline = statistics.mean(data)", "step:baseline"),
            code("score = sum(features) / baseline", "step:train"),
            code("score", "pipeline-metrics"),
        ]
    )


@dataclass
class Kfp:
    """A KFP server and what a notebook pod has: its namespace file and token file."""

    stub: KfpStub
    home: Path
    root: Path
    token_file: Path

    @property
    def multi_user(self) -> bool:
        return self.stub.multi_user

    def client(self, **options: Any) -> Client:
        return Client(
            "kubernetes",
            home=self.home,
            root=self.root,
            pipeline_root=self.home / "outputs",  # local runs' artifacts
            kfp_endpoint=self.stub.url,
            **options,
        )

    def rotate_token(self, new: str) -> None:
        """The kubelet writes a fresh projected token; the API server stops taking the old."""
        old = self.token_file.read_text()
        self.stub.tokens.pop(old, None)
        self.stub.add_token(new, USER)
        self.token_file.write_text(new)


@contextmanager
def running_kfp(
    multi_user: bool, tmp_path: Path, home: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Kfp]:
    """A started stub; in multi-user mode the pod's ServiceAccount namespace file and
    projected token file (found through $KF_PIPELINES_SA_TOKEN_PATH, as kfp.Client does)."""
    stub = KfpStub(multi_user=multi_user).start()
    token_file = tmp_path / "sa" / "token"
    token_file.parent.mkdir()
    namespace_file = tmp_path / "sa" / "namespace"
    monkeypatch.setattr(kubeflow, "NAMESPACE_FILE", namespace_file)
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token_file))
    monkeypatch.delenv("KUBELAB_KFP_ENDPOINT", raising=False)
    if multi_user:
        namespace_file.write_text(NAMESPACE + "\n")
        token_file.write_text("projected-token-1")
        stub.add_token("projected-token-1", USER)
        stub.grant(USER, NAMESPACE)
    try:
        yield Kfp(stub, home, root, token_file)
    finally:
        stub.stop()
    assert stub.problems == []
