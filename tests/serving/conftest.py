"""Model servers for the serving tests: real processes started the way `kubelab serve`
starts them (ServingWorkload.start_local), recorded in a real run store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest

from kubelab.client.store import RunStore
from kubelab.workloads.base import LocalContext
from kubelab.workloads.serving.workload import ServingWorkload, server_pid

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]


def train_iris() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(x, y)


@pytest.fixture(scope="session")
def iris_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("iris") / "model.joblib"
    joblib.dump(train_iris(), path)
    return path


class Servers:
    """Starts servers in one store and stops them all at the end."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.store = RunStore(home / "kubelab.db")
        self.ctx = LocalContext(store=self.store, home=home, root=home)
        self.workload = ServingWorkload()
        self.jobs: list[str] = []

    def start(self, name: str, model: Path | str, **spec: Any) -> str:
        normalised = self.workload.validate({"name": name, "model": str(model), **spec})
        job_id = f"{name}-{len(self.jobs)}"
        self.store.create_run(job_id, {}, run_id=job_id, kind="serving", spec=normalised)
        self.workload.start_local(job_id, normalised, self.ctx)
        self.jobs.append(job_id)
        return job_id

    def wait(self, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
        """The job once it serves or has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.store.get_run(job_id)
            outputs = job["steps"][0]["outputs"] if job["steps"] else {}
            if job["state"] not in ("pending", "running") or outputs.get("ready"):
                return job
            time.sleep(0.05)
        raise TimeoutError(f"{job_id} not ready after {timeout}s:\n{self.log(job_id)}")

    def url(self, job_id: str) -> str:
        job = self.wait(job_id)
        assert job["state"] == "running", (job, self.log(job_id))
        return str(job["steps"][0]["outputs"]["url"])

    def log(self, job_id: str) -> str:
        path = self.store.task_info(job_id, "server")["log_path"]
        return Path(path).read_text() if path and Path(path).exists() else ""

    def stop(self, job_id: str) -> None:
        if self.store.get_run(job_id)["state"] in ("pending", "running"):
            self.workload.cancel_local(job_id, self.ctx)

    def close(self) -> None:
        for job_id in self.jobs:
            self.stop(job_id)
        self.store.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    servers = Servers(tmp_path / "servers")
    yield servers
    servers.close()


@pytest.fixture(scope="module")
def iris_server(tmp_path_factory: pytest.TempPathFactory, iris_file: Path) -> Iterator[str]:
    """The base URL of one iris server shared by a test module."""
    servers = Servers(tmp_path_factory.mktemp("iris-server"))
    job_id = servers.start("iris", iris_file)
    try:
        yield servers.url(job_id)
    finally:
        assert server_pid(servers.store, job_id)
        servers.close()
