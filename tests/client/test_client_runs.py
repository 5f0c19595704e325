"""`Client` against the local backend: pipeline runs end to end, real engine, real store."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from kubelab.client import Client
from kubelab.pipelines.errors import ConflictError, KubelabError, NotFoundError

PIPELINE = textwrap.dedent(
    """
    from kubelab.pipelines import dsl

    @dsl.component
    def add(a: int, b: int) -> int:
        print("adding", a, b)
        return a + b

    @dsl.component
    def slow(x: int) -> int:
        import time
        print("sleeping", flush=True)
        time.sleep(x)
        return x

    @dsl.pipeline(name="sum")
    def total(a: int = 1) -> int:
        return add(a=add(a=a, b=2).output, b=3).output

    @dsl.pipeline(name="slow")
    def slow_pipeline(x: int = 60) -> int:
        return slow(x=x).output
    """
)


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    path = tmp_path / "p.py"
    path.write_text(PIPELINE)
    return path


def test_run_from_a_package_to_its_outputs_logs_and_list(client: Client, pipeline_file: Path):
    started = client.create_run_from_pipeline_package(pipeline_file, {"a": 5}, function="total")
    assert started.backend == "local"
    run = started.wait_for_run_completion(timeout=60)
    assert run["state"] == "succeeded", run
    assert run["outputs"] == {"Output": 10}
    assert run["source"] == str(pipeline_file.resolve())
    assert [r["id"] for r in client.list_runs()] == [started.run_id]
    log = client.logs(started.run_id, "add", 0)
    assert "adding 5 2" in log["text"] and log["complete"] and log["state"] == "succeeded"
    # The offset says where the next call starts: nothing new, still complete.
    again = client.logs(started.run_id, "add", log["offset"])
    assert again == {"text": "", "offset": log["offset"], "complete": True, "state": "succeeded"}
    assert "".join(client.stream_logs(started.run_id, "add")) == log["text"]
    with pytest.raises(ConflictError, match="already finished"):
        client.cancel(started.run_id)


def test_from_a_function_and_rerun_with_the_same_parameters(client: Client, pipeline_file: Path):
    from kubelab.pipelines.compiler import load_pipeline_file

    total = load_pipeline_file(str(pipeline_file), function_name="total")
    first = client.create_run_from_pipeline_func(total, {"a": 1})
    assert client.wait_for_run_completion(first.run_id, 60)["outputs"] == {"Output": 6}
    # A run from a function has no source file to compile again.
    with pytest.raises(KubelabError, match="no source file"):
        client.rerun(first.run_id)
    # Re-running compiles the source again: a file with one pipeline (or a notebook).
    single = pipeline_file.with_name("single.py")
    single.write_text(PIPELINE.split('@dsl.pipeline(name="slow")')[0])
    packaged = client.create_run_from_pipeline_package(single, {"a": 2})
    client.wait_for_run_completion(packaged.run_id, 60)
    rerun = client.rerun(packaged.run_id)
    run = client.wait_for_run_completion(rerun, 60)
    assert run["parameters"] == {"a": 2}
    assert all(step["cached"] for step in run["steps"])  # same inputs: reused


def test_run_from_a_step_reruns_it_and_its_downstream(client: Client, tmp_path: Path):
    from kubelab.pipelines import compiler
    from kubelab.pipelines.compiler import load_pipeline_file

    (tmp_path / "p.py").write_text(PIPELINE)
    compiler.Compiler().compile(
        load_pipeline_file(str(tmp_path / "p.py"), function_name="total"), str(tmp_path / "t.yaml")
    )
    first = client.create_run_from_pipeline_package(tmp_path / "t.yaml", {"a": 3})
    client.wait_for_run_completion(first.run_id, 60)
    again = client.wait_for_run_completion(client.run_from(first.run_id, "add-2"), 60)
    cached = {s["name"]: s["cached"] for s in again["steps"]}
    assert cached == {"add": True, "add-2": False}
    assert again["outputs"] == {"Output": 8}
    with pytest.raises(NotFoundError, match="no step 'nope'"):
        client.run_from(first.run_id, "nope")


def test_cancel_a_running_run_and_wait(client: Client, pipeline_file: Path):
    started = client.create_run_from_pipeline_package(pipeline_file, function="slow_pipeline")
    deadline = time.monotonic() + 30
    while client.get_run(started.run_id)["steps"][0]["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(TimeoutError, match="still running"):
        client.wait_for_run_completion(started.run_id, timeout=0.2)
    client.terminate_run(started.run_id[:18])  # a unique prefix is enough
    run = client.wait_for_run_completion(started.run_id, 30)
    assert run["state"] == "cancelled"
    assert client.logs(started.run_id, "slow")["complete"]


def test_bad_input_is_a_clear_error(client: Client, pipeline_file: Path):
    with pytest.raises(KubelabError, match=r"unknown parameter 'zz'; valid parameters: a") as e:
        client.create_run_from_pipeline_package(pipeline_file, {"zz": 1}, function="total")
    assert e.value.details["parameter"] == "zz"
    with pytest.raises(KubelabError, match="unknown backend 'cloud'; backends: local, kubernetes"):
        Client("cloud")
    with pytest.raises(KubelabError, match="the kubernetes backend is not configured"):
        client.create_run_from_pipeline_package(
            pipeline_file, function="total", backend="kubernetes"
        )
    with pytest.raises(NotFoundError, match="no such file"):
        client.create_run_from_pipeline_package("missing.yaml")
    with pytest.raises(NotFoundError, match="no run 'nothing'"):
        client.get_run("nothing")
    with pytest.raises(KubelabError, match="offset must be 0 or more"):
        started = client.create_run_from_pipeline_package(pipeline_file, function="total")
        client.logs(started.run_id, "add", -1)


def test_an_unreachable_kubeflow_server_is_named(kubelab_home: Path, pipeline_file: Path):
    client = Client("kubernetes", home=kubelab_home, kfp_endpoint="http://127.0.0.1:9")
    with pytest.raises(
        KubelabError, match=r"cannot reach Kubeflow Pipelines at http://127.0.0.1:9"
    ):
        client.list_runs(backend="kubernetes")
    # Listing every backend still lists the local runs, and says why KFP's are missing.
    local = client.create_run_from_pipeline_package(
        pipeline_file, backend="local", function="total"
    )
    runs = client.list_runs()
    assert [r["id"] for r in runs] == [local.run_id]
    assert "cannot reach Kubeflow Pipelines at http://127.0.0.1:9" in runs.unavailable["kubernetes"]
