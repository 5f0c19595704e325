"""The component-side runtime: executor_main.execute() and the container command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from kubelab.pipelines import compiler, dsl, executor_main
from kubelab.pipelines.dsl import (
    ClassificationMetrics,
    Dataset,
    Input,
    InputPath,
    Metrics,
    Model,
    Output,
    OutputPath,
)
from kubelab.pipelines.errors import KubelabError


@dsl.component
def add(a: int, b: float = 0.5) -> float:
    return a + b


@dsl.component
def split(text: str, parts: list, cfg: dict, flag: bool = False) -> NamedTuple(
    "Outputs", [("head", str), ("count", int), ("cfg", dict)]
):
    outputs = NamedTuple("Outputs", [("head", str), ("count", int), ("cfg", dict)])  # noqa: UP014
    return outputs(text.split()[0], len(parts) + int(flag), cfg)


@dsl.component
def train(
    data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    roc: Output[ClassificationMetrics],
    lr: float = 0.1,
):
    with open(data.path) as f:
        rows = f.read().split()
    with open(model.path, "w") as f:
        f.write(f"{len(rows)} rows lr={lr}")
    model.metadata["framework"] = "toy"
    metrics.log_metric("rows", len(rows))
    metrics.log_metric("lr", lr)
    roc.log_roc_curve([0.0, 1.0], [0.0, 1.0], [1.0, 0.0])
    roc.log_confusion_matrix(["a", "b"], [[2, 0], [1, 3]])


@dsl.component
def copy_upper(src: InputPath("Dataset"), dst: OutputPath("Dataset"), size: OutputPath(int)):
    with open(src) as f:
        text = f.read()
    with open(dst, "w") as f:
        f.write(text.upper())
    with open(size, "w") as f:
        f.write(str(len(text)))


@dsl.component
def count_all(items: Input[list[Dataset]]) -> int:
    total = 0
    for item in items:
        with open(item.path) as f:
            total += len(f.read().split())
    return total


@dsl.component
def final(status: dsl.PipelineTaskFinalStatus) -> str:
    return f"{status.pipeline_task_name}:{status.state}:{status.error_message}"


def source_of(component: Any) -> str:
    return component.executor_spec()["container"]["command"][6]


def outputs_spec(tmp_path: Path, parameters: list[str], artifacts: dict[str, str]) -> dict:
    return {
        "parameters": {p: {"outputFile": str(tmp_path / "params" / p)} for p in parameters},
        "artifacts": {
            name: {
                "artifacts": [
                    {
                        "name": name,
                        "type": {"schemaTitle": title},
                        "uri": str(tmp_path / "artifacts" / name / "data"),
                        "metadata": {},
                    }
                ]
            }
            for name, title in artifacts.items()
        },
        "outputFile": str(tmp_path / "executor_output.json"),
    }


def test_parameters_and_defaults(tmp_path: Path) -> None:
    executor_input = {
        "inputs": {"parameterValues": {"a": 2.0}},  # protobuf numbers arrive as doubles
        "outputs": outputs_spec(tmp_path, ["Output"], {}),
    }
    result = executor_main.execute(executor_input, source_of(add), "add")
    assert result == {"parameterValues": {"Output": 2.5}}
    assert (tmp_path / "params" / "Output").read_text() == "2.5"
    assert json.loads((tmp_path / "executor_output.json").read_text()) == result


def test_named_tuple_outputs(tmp_path: Path) -> None:
    executor_input = {
        "inputs": {
            "parameterValues": {
                "text": "hello big world",
                "parts": [1.0, 2.0],
                "cfg": {"depth": 3.0, "name": "x"},
                "flag": True,
            }
        },
        "outputs": outputs_spec(tmp_path, ["head", "count", "cfg"], {}),
    }
    result = executor_main.execute(executor_input, source_of(split), "split")
    assert result["parameterValues"] == {
        "head": "hello",
        "count": 3,
        "cfg": {"depth": 3, "name": "x"},
    }
    assert (tmp_path / "params" / "head").read_text() == "hello"
    assert json.loads((tmp_path / "params" / "cfg").read_text()) == {"depth": 3, "name": "x"}


def test_artifacts_and_metrics(tmp_path: Path) -> None:
    data = tmp_path / "in" / "data.txt"
    data.parent.mkdir()
    data.write_text("a b c d")
    executor_input = {
        "inputs": {
            "parameterValues": {},
            "artifacts": {
                "data": {
                    "artifacts": [
                        {
                            "name": "data",
                            "type": {"schemaTitle": "system.Dataset"},
                            "uri": str(data),
                            "metadata": {"rows": 4},
                        }
                    ]
                }
            },
        },
        "outputs": outputs_spec(
            tmp_path,
            [],
            {
                "model": "system.Model",
                "metrics": "system.Metrics",
                "roc": "system.ClassificationMetrics",
            },
        ),
    }
    result = executor_main.execute(executor_input, source_of(train), "train")
    model = result["artifacts"]["model"]["artifacts"][0]
    assert Path(model["uri"]).read_text() == "4 rows lr=0.1"
    assert model["metadata"] == {"framework": "toy"}
    assert result["artifacts"]["metrics"]["artifacts"][0]["metadata"] == {"rows": 4, "lr": 0.1}
    roc = result["artifacts"]["roc"]["artifacts"][0]["metadata"]
    assert roc["confusionMatrix"] == {
        "annotationSpecs": [{"displayName": "a"}, {"displayName": "b"}],
        "rows": [{"row": [2, 0]}, {"row": [1, 3]}],
    }
    assert roc["confidenceMetrics"][1] == {
        "confidenceThreshold": 0.0,
        "recall": 1.0,
        "falsePositiveRate": 1.0,
    }
    written = json.loads((tmp_path / "executor_output.json").read_text())
    assert written == result
    # KFP's launcher reads this file as an ExecutorOutput message.
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    json_format.ParseDict(written, pipeline_spec_pb2.ExecutorOutput(), ignore_unknown_fields=False)


def test_input_output_paths(tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_text("shout")
    executor_input = {
        "inputs": {
            "artifacts": {
                "src": {
                    "artifacts": [
                        {"name": "src", "type": {"schemaTitle": "system.Dataset"}, "uri": str(src)}
                    ]
                }
            }
        },
        "outputs": outputs_spec(tmp_path, ["size"], {"dst": "system.Dataset"}),
    }
    result = executor_main.execute(executor_input, source_of(copy_upper), "copy_upper")
    assert result["parameterValues"] == {"size": 5}
    assert Path(result["artifacts"]["dst"]["artifacts"][0]["uri"]).read_text() == "SHOUT"


def test_collected_artifact_list(tmp_path: Path) -> None:
    files = []
    for i, text in enumerate(["a b", "c", "d e f"]):
        path = tmp_path / f"part{i}"
        path.write_text(text)
        files.append({"name": "part", "type": {"schemaTitle": "system.Dataset"}, "uri": str(path)})
    executor_input = {
        "inputs": {"artifacts": {"items": {"artifacts": files}}},
        "outputs": outputs_spec(tmp_path, ["Output"], {}),
    }
    result = executor_main.execute(executor_input, source_of(count_all), "count_all")
    assert result["parameterValues"] == {"Output": 6}


def test_task_final_status(tmp_path: Path) -> None:
    status = {
        "state": "FAILED",
        "pipelineJobResourceName": "runs/1",
        "pipelineTaskName": "exit-handler-1",
        "error": {"code": 2, "message": "boom"},
    }
    executor_input = {
        "inputs": {"parameterValues": {"status": status}},
        "outputs": outputs_spec(tmp_path, ["Output"], {}),
    }
    result = executor_main.execute(executor_input, source_of(final), "final")
    assert result["parameterValues"] == {"Output": "exit-handler-1:FAILED:boom"}


def test_wrong_return_type_is_reported(tmp_path: Path) -> None:
    @dsl.component
    def lying() -> int:
        return "not a number"

    executor_input = {"outputs": outputs_spec(tmp_path, ["Output"], {})}
    with pytest.raises(KubelabError, match=r"Output 'Output' should be int"):
        executor_main.execute(executor_input, source_of(lying), "lying")


def test_remote_uris_map_to_mounts() -> None:
    artifact = dsl.Artifact(uri="gs://bucket/x/y")
    assert artifact.path == "/gcs/bucket/x/y"
    assert dsl.Model(uri="s3://b/m").path == "/s3/b/m"
    assert dsl.Dataset(uri="minio://b/d").path == "/minio/b/d"
    local = dsl.Dataset(uri="/tmp/data.csv")
    assert local.path == "/tmp/data.csv"
    local.path = "/gcs/other/file"
    assert local.uri == "gs://other/file"


def test_command_line_entry_point_runs_the_compiled_command(tmp_path: Path) -> None:
    """Run the exact sh command the compiler emits, as a KFP pod would.

    `python3` here sees only the standard library and kubelab's source tree
    (`-S`: no site-packages), as in a slim image with kubelab installed --no-deps.
    """
    ir = compiler.build_pipeline_spec(add)
    container = ir["deploymentSpec"]["executors"]["exec-add"]["container"]
    executor_input = {
        "inputs": {"parameterValues": {"a": 40, "b": 2}},
        "outputs": outputs_spec(tmp_path, ["Output"], {}),
    }
    args = [json.dumps(executor_input) if arg == "{{$}}" else arg for arg in container["args"]]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "python3"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    shim.chmod(0o755)
    pipelines_src = Path(__file__).resolve().parents[3] / "pipelines"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(pipelines_src),
    }
    done = subprocess.run(
        [*container["command"], *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install" not in done.stderr  # kubelab is present: nothing installed
    assert json.loads((tmp_path / "executor_output.json").read_text()) == {
        "parameterValues": {"Output": 42.0}
    }
    assert (tmp_path / "params" / "Output").read_text() == "42.0"


@dsl.component
def returns_text() -> Dataset:
    return "plain text"


@dsl.component
def returns_dataset(text: str) -> Dataset:
    dataset = Dataset(uri=dsl.get_uri("data"), metadata={"n": len(text)})
    with open(dataset.path, "w") as f:
        f.write(text)
    return dataset


@dsl.component
def forgets_the_uri() -> Dataset:
    return Dataset()


def test_returned_artifacts(tmp_path: Path) -> None:
    outputs = outputs_spec(tmp_path, [], {"Output": "system.Dataset"})
    # Data returned for an artifact is written into it, as KFP's executor does.
    result = executor_main.execute({"outputs": outputs}, source_of(returns_text), "returns_text")
    assert Path(result["artifacts"]["Output"]["artifacts"][0]["uri"]).read_text() == "plain text"
    # An artifact made with dsl.get_uri() lives in the task's directory, and is returned.
    executor_input = {"inputs": {"parameterValues": {"text": "abc"}}, "outputs": outputs}
    result = executor_main.execute(executor_input, source_of(returns_dataset), "returns_dataset")
    (returned,) = result["artifacts"]["Output"]["artifacts"]
    assert returned["uri"] == str(tmp_path / "data")
    assert returned["metadata"] == {"n": 3}
    assert (tmp_path / "data").read_text() == "abc"
    with pytest.raises(KubelabError, match=r"has no uri; create it with uri=dsl\.get_uri"):
        executor_main.execute({"outputs": outputs}, source_of(forgets_the_uri), "forgets_the_uri")


def test_get_uri_only_at_run_time() -> None:
    from kubelab.pipelines.dsl import artifact_types

    artifact_types.CONTAINER_TASK_ROOT = None
    with pytest.raises(RuntimeError, match="only be called while a task runs"):
        dsl.get_uri()
