"""A `kubelab.pipelines.local` session for the tests that call components directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab.client.store import RunStore
from kubelab.pipelines import local


@pytest.fixture
def session(tmp_path: Path) -> Iterator[RunStore]:
    """local.init() with a private store and outputs; reset after the test."""
    store = RunStore(tmp_path / "runs.db")
    local.init(
        runner=local.SubprocessRunner(), pipeline_root=str(tmp_path / "outputs"), store=store
    )
    yield store
    local._reset()
