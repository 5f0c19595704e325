"""ServingWorkload on this machine: the spec, and the server's life in the run store
(pending → running → cancelled, or failed with the reason), as its own process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from kubelab.pipelines.errors import ConflictError, KubelabError
from kubelab.workloads.serving.workload import ServingWorkload, _is_server, server_pid

from .conftest import Servers


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


# -- spec ---------------------------------------------------------------------------------------


def test_validate_normalises_the_spec(iris_file: Path) -> None:
    spec = ServingWorkload().validate({"name": "iris", "model": str(iris_file.parent)})
    assert spec["format"] == "sklearn"
    assert spec["model_file"] == str(iris_file)
    assert spec["home_path"] is None or not spec["home_path"].startswith("/")
    rooted = ServingWorkload().validate(
        {"name": "iris", "model": iris_file.name, "predict_proba": True}, iris_file.parent
    )
    assert rooted["home_path"] == "model.joblib" and rooted["predict_proba"] is True


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"model": "m.joblib"}, "name", "give the model a name"),
        ({"name": "Iris"}, "name", "must be lowercase letters"),
        ({"name": "1iris"}, "name", "start with a letter"),
        ({"name": "x" * 46}, "name", "at most 45 characters"),
        ({"name": "iris"}, "model", "give the path of a model file"),
        ({"name": "iris", "model": "missing.joblib"}, "model", "does not exist"),
        ({"name": "iris", "model": "MODEL", "format": "onnx"}, "format", "is not one of"),
        (
            {"name": "iris", "model": "MODEL", "predict_proba": "yes"},
            "predict_proba",
            "true or false",
        ),
        ({"name": "iris", "model": "MODEL", "port": 70000}, "port", "not a port number"),
        ({"name": "iris", "model": "MODEL", "replicas": 2}, "replicas", "unknown field"),
        ({"name": "iris", "model": "MODEL", "resources": {"disk": 1}}, "resources", "may set cpu"),
        ({"name": "iris", "model": "/etc/passwd"}, "model", "outside your root folder"),
    ],
)
def test_validate_names_the_bad_field(
    iris_file: Path, spec: dict, field: str, message: str
) -> None:
    if spec.get("model") == "MODEL":
        spec = {**spec, "model": iris_file.name}
    with pytest.raises(KubelabError) as error:
        ServingWorkload().validate(spec, iris_file.parent)
    assert error.value.details.get("field") == field
    assert message in error.value.message


def test_custom_class_named_after_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text("class M:\n    def predict(self, x):\n        return x\n")
    spec = ServingWorkload().validate({"name": "m", "model": f"{tmp_path}/model.py:M"})
    assert (spec["format"], spec["class_name"]) == ("custom", "M")
    with pytest.raises(KubelabError, match="applies to sklearn"):
        ServingWorkload().validate(
            {"name": "m", "model": str(tmp_path / "model.py"), "predict_proba": True}
        )


# -- the process ------------------------------------------------------------------------------


def test_start_serve_stop(servers: Servers, iris_file: Path) -> None:
    job_id = servers.start("iris", iris_file)
    url = servers.url(job_id)
    job = servers.store.get_run(job_id)
    outputs = job["steps"][0]["outputs"]
    assert job["state"] == "running" and job["steps"][0]["state"] == "running"
    assert url.startswith("http://127.0.0.1:") and outputs["ready"] is True
    pid = server_pid(servers.store, job_id)
    assert pid and pid != os.getpid() and _is_server(pid)
    assert os.getpgid(pid) == pid  # its own process group, apart from whoever started it
    assert ready(url)
    assert "ready in" in servers.log(job_id)

    servers.stop(job_id)
    job = servers.store.get_run(job_id)
    assert job["state"] == "cancelled" and job["error"] is None and job["finished_at"]
    assert job["steps"][0]["state"] == "cancelled"
    assert job["steps"][0]["outputs"]["ready"] is False
    assert not _is_server(pid) and not ready(url)


def test_a_model_that_fails_to_load_is_reported(servers: Servers, tmp_path: Path) -> None:
    broken = tmp_path / "broken.joblib"
    broken.write_bytes(b"\x80\x04 not a pickle at all")
    job_id = servers.start("broken", broken)
    job = servers.wait(job_id)
    assert job["state"] == "failed"
    assert job["error"].startswith("model failed to load: ")
    assert job["steps"][0]["state"] == "failed"
    assert "Traceback" in servers.log(job_id)
    pid = server_pid(servers.store, job_id)
    deadline = time.monotonic() + 10
    while pid and _is_server(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (pid and _is_server(pid)), "the server process exits after a failed load"


def test_a_taken_port_is_reported(servers: Servers, iris_file: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        job = servers.wait(servers.start("iris", iris_file, port=port))
    assert job["state"] == "failed"
    assert f"cannot listen on 127.0.0.1:{port}" in job["error"]


def test_one_running_server_per_name(servers: Servers, iris_file: Path) -> None:
    first = servers.start("iris", iris_file)
    with pytest.raises(ConflictError, match="already running"):
        servers.start("iris", iris_file)
    servers.stop(first)


def test_a_killed_server_is_recorded_as_failed(servers: Servers, iris_file: Path) -> None:
    job_id = servers.start("iris", iris_file)
    servers.url(job_id)
    pid = server_pid(servers.store, job_id)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while servers.store.get_run(job_id)["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    job = servers.store.get_run(job_id)
    assert job["state"] == "failed" and "exited with code -9" in job["error"]


def test_the_server_outlives_the_kernel_that_started_it(tmp_path: Path, iris_file: Path) -> None:
    """A kernel is killed with its whole process group (as jupyter_client does); the
    model server it started keeps serving, and any other process can stop it."""
    home = tmp_path / "home"
    kernel_code = textwrap.dedent(
        f"""
        import json, sys, time
        sys.path[:0] = {json.dumps(sys.path)}
        from tests.serving.conftest import Servers
        servers = Servers(__import__("pathlib").Path({str(home)!r}))
        job = servers.start("iris", {str(iris_file)!r})
        print(servers.url(job), flush=True)
        time.sleep(600)
        """
    )
    kernel = subprocess.Popen(
        [sys.executable, "-c", kernel_code],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        url = kernel.stdout.readline().strip() if kernel.stdout else ""
        assert url.startswith("http://"), url
        os.killpg(kernel.pid, signal.SIGKILL)
        kernel.wait(timeout=10)
        assert ready(url)
    finally:
        if kernel.poll() is None:
            os.killpg(kernel.pid, signal.SIGKILL)
    servers = Servers(home)
    job_id = servers.store.list_runs(kinds=("serving",))[0]["id"]
    assert servers.store.get_run(job_id)["state"] == "running"  # not marked interrupted
    servers.stop(job_id)
    assert servers.store.get_run(job_id)["state"] == "cancelled"
    assert not ready(url)
    servers.close()
