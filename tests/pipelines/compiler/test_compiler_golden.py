"""Every golden pipeline compiles to IR that the real kfp-pipeline-spec protobuf accepts,
with the structure KFP 2.x gives the same code."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubelab.pipelines import compiler

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
REPO = Path(__file__).resolve().parents[3]


def _load_golden_package() -> Any:
    spec = importlib.util.spec_from_file_location("kubelab_golden", GOLDEN_DIR / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


golden = _load_golden_package()


def ir_of(name: str) -> dict[str, Any]:
    return compiler.build_pipeline_spec(golden.load_golden(name).pipeline)


@pytest.mark.parametrize("name", golden.GOLDEN_NAMES)
def test_golden_compiles_and_parses_with_protobuf(name: str, tmp_path: Path) -> None:
    module = golden.load_golden(name)
    assert isinstance(module.ARGUMENTS, dict)
    assert isinstance(module.EXPECTED_OUTPUTS, dict) and module.EXPECTED_OUTPUTS
    path = tmp_path / f"{name}.yaml"
    compiler.Compiler().compile(module.pipeline, str(path))
    documents = list(yaml.safe_load_all(path.read_text()))
    assert len(documents) == 1  # no Kubernetes-only settings in the goldens
    ir = documents[0]
    # What compile writes is exactly what the pure builder returns.
    assert ir == compiler.build_pipeline_spec(module.pipeline)
    message = json_format.ParseDict(
        ir, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False
    )
    assert message.schema_version == "2.1.0"
    assert message.sdk_version.startswith("kubelab-")
    # Every componentRef and executorLabel points at something that exists.
    for comp in ir["components"].values():
        if "executorLabel" in comp:
            assert comp["executorLabel"] in ir["deploymentSpec"]["executors"]
        for task in comp.get("dag", {}).get("tasks", {}).values():
            assert task["componentRef"]["name"] in ir["components"]
    for task in ir["root"]["dag"]["tasks"].values():
        assert task["componentRef"]["name"] in ir["components"]
    # The pipeline outputs the golden promises are declared by the IR.
    declared = ir["root"].get("outputDefinitions", {})
    names = {*declared.get("parameters", {}), *declared.get("artifacts", {})}
    expected = {key.removesuffix(".text") for key in module.EXPECTED_OUTPUTS}
    assert expected <= names


def test_python_executor_shape() -> None:
    ir = ir_of("params_namedtuple")
    executor = ir["deploymentSpec"]["executors"]["exec-stats"]["container"]
    assert executor["image"] == "python:3.11"
    command = executor["command"]
    assert command[0:2] == ["sh", "-c"] and command[3:5] == ["sh", "-ec"]
    assert 'python3 -c "import kubelab.pipelines.executor_main"' in command[2]
    assert "python3 -m kubelab.pipelines.executor_main" in command[5]
    assert "--component_module_path" in command[5]
    source = command[6]
    assert source.startswith("from kubelab.pipelines import dsl\n")
    assert "from kubelab.pipelines.dsl import *\nfrom typing import *\n" in source
    assert "def stats(" in source and "@dsl.component" not in source
    assert executor["args"] == ["--executor_input", "{{$}}", "--function_to_execute", "stats"]
    outputs = ir["components"]["comp-stats"]["outputDefinitions"]["parameters"]
    assert {k: v["parameterType"] for k, v in outputs.items()} == {
        "total": "NUMBER_DOUBLE",
        "count": "NUMBER_INTEGER",
        "label": "STRING",
        "big": "BOOLEAN",
    }
    inputs = ir["components"]["comp-stats"]["inputDefinitions"]["parameters"]
    assert inputs["label"] == {"isOptional": True, "parameterType": "STRING"}
    assert inputs["opts"]["defaultValue"] == {"digits": 2.0}
    root_inputs = ir["root"]["inputDefinitions"]["parameters"]
    assert root_inputs["xs"] == {
        "defaultValue": [1.0, 2.0, 3.0],
        "isOptional": True,
        "parameterType": "LIST",
    }
    assert ir["root"]["dag"]["outputs"]["parameters"]["summary"] == {
        "valueFromParameter": {"producerSubtask": "describe", "outputParameterKey": "Output"}
    }
    task = ir["root"]["dag"]["tasks"]["describe"]
    assert task["dependentTasks"] == ["stats"]
    assert task["inputs"]["parameters"]["count"] == {
        "taskOutputParameter": {"producerTask": "stats", "outputParameterKey": "count"}
    }
    assert ir["root"]["dag"]["tasks"]["add"]["inputs"]["parameters"] == {
        "a": {"componentInputParameter": "a"},
        "b": {"runtimeValue": {"constant": 1.5}},
    }


def test_artifacts_and_paths() -> None:
    ir = ir_of("artifacts")
    train = ir["components"]["comp-train"]
    titles = {
        k: v["artifactType"]["schemaTitle"]
        for k, v in train["outputDefinitions"]["artifacts"].items()
    }
    assert titles == {
        "model": "system.Model",
        "metrics": "system.Metrics",
        "roc": "system.ClassificationMetrics",
    }
    copy = ir["components"]["comp-shout-copy"]
    assert copy["inputDefinitions"]["artifacts"]["src"]["artifactType"]["schemaTitle"] == (
        "system.Model"
    )
    assert copy["outputDefinitions"]["artifacts"]["dst"]["artifactType"]["schemaTitle"] == (
        "system.Dataset"
    )
    assert copy["outputDefinitions"]["parameters"]["size"] == {"parameterType": "NUMBER_INTEGER"}
    assert ir["root"]["dag"]["tasks"]["train"]["inputs"]["artifacts"]["data"] == {
        "taskOutputArtifact": {"producerTask": "make-data", "outputArtifactKey": "data"}
    }
    assert ir["root"]["dag"]["outputs"]["artifacts"]["page"] == {
        "artifactSelectors": [{"producerSubtask": "report", "outputArtifactKey": "page"}]
    }
    out_types = {
        k: v["artifactType"]["schemaTitle"]
        for k, v in ir["root"]["outputDefinitions"]["artifacts"].items()
    }
    assert out_types["page"] == "system.HTML" and out_types["notes"] == "system.Markdown"


def test_container_component_placeholders() -> None:
    ir = ir_of("container")
    greet = ir["deploymentSpec"]["executors"]["exec-greet"]["container"]
    assert greet["image"] == "alpine:3.20"
    assert greet["command"][:2] == ["sh", "-c"]
    assert greet["args"] == [
        "{{$.inputs.parameters['name']}}",
        "{{$.outputs.parameters['greeting'].output_file}}",
    ]
    write = ir["deploymentSpec"]["executors"]["exec-write-file"]["container"]
    assert write["args"][1] == "{{$.outputs.artifacts['out'].path}}"


def test_parallel_for_and_collected() -> None:
    ir = ir_of("parallel_for")
    tasks = ir["root"]["dag"]["tasks"]
    loops = {name: t for name, t in tasks.items() if name.startswith("for-loop-")}
    assert len(loops) == 4
    over_task = next(t for t in loops.values() if "make-items" in t.get("dependentTasks", []))
    assert over_task["iteratorPolicy"] == {"parallelismLimit": 2}
    assert over_task["parameterIterator"] == {
        "itemInput": "pipelinechannel--make-items-Output-loop-item",
        "items": {"inputParameter": "pipelinechannel--make-items-Output"},
    }
    assert over_task["inputs"]["parameters"]["pipelinechannel--make-items-Output"] == {
        "taskOutputParameter": {"producerTask": "make-items", "outputParameterKey": "Output"}
    }
    literal = next(
        t
        for t in loops.values()
        if json.loads(t["parameterIterator"]["items"].get("raw", "null")) == [10, 20]
    )
    assert literal["iteratorPolicy"] == {"parallelismLimit": 1}
    over_param = next(
        t
        for t in loops.values()
        if t["parameterIterator"]["items"].get("inputParameter") == "pipelinechannel--xs"
    )
    assert over_param["inputs"]["parameters"]["pipelinechannel--xs"] == {
        "componentInputParameter": "xs"
    }
    assert "iteratorPolicy" not in over_param
    loop_name = next(n for n, t in loops.items() if t is over_task)
    loop_comp = ir["components"][over_task["componentRef"]["name"]]
    assert loop_comp["dag"]["outputs"]["parameters"]["pipelinechannel--square-Output"] == {
        "valueFromParameter": {"producerSubtask": "square", "outputParameterKey": "Output"}
    }
    assert loop_comp["outputDefinitions"]["parameters"]["pipelinechannel--square-Output"] == {
        "parameterType": "LIST"
    }
    assert loop_comp["dag"]["outputs"]["artifacts"]["pipelinechannel--write-number-out"] == {
        "artifactSelectors": [{"producerSubtask": "write-number", "outputArtifactKey": "out"}]
    }
    assert loop_comp["outputDefinitions"]["artifacts"]["pipelinechannel--write-number-out"][
        "isArtifactList"
    ]
    assert loop_comp["dag"]["tasks"]["square"]["inputs"]["parameters"]["x"] == {
        "componentInputParameter": "pipelinechannel--make-items-Output-loop-item"
    }
    dicts = next(
        (n, t) for n, t in loops.items() if "base" in t["parameterIterator"]["items"].get("raw", "")
    )
    item_key = dicts[1]["parameterIterator"]["itemInput"]
    dict_comp = ir["components"][dicts[1]["componentRef"]["name"]]
    assert dict_comp["inputDefinitions"]["parameters"][item_key] == {"parameterType": "STRUCT"}
    assert dict_comp["dag"]["tasks"]["power"]["inputs"]["parameters"]["exponent"] == {
        "componentInputParameter": item_key,
        "parameterExpressionSelector": 'parseJson(string_value)["exp"]',
    }
    # The sub-pipeline iterates over a list of artifacts (artifactIterator).
    sub = ir["components"][tasks["sum-files"]["componentRef"]["name"]]
    assert sub["inputDefinitions"]["artifacts"]["files"]["isArtifactList"] is True
    sub_loop = next(t for n, t in sub["dag"]["tasks"].items() if n.startswith("for-loop-"))
    assert sub_loop["artifactIterator"] == {
        "itemInput": "pipelinechannel--files-loop-item",
        "items": {"inputArtifact": "pipelinechannel--files"},
    }
    assert sub_loop["iteratorPolicy"] == {"parallelismLimit": 2}
    sub_loop_comp = ir["components"][sub_loop["componentRef"]["name"]]
    assert (
        "isArtifactList"
        not in (sub_loop_comp["inputDefinitions"]["artifacts"]["pipelinechannel--files-loop-item"])
    )
    assert (
        tasks["sum-files"]["inputs"]["artifacts"]["files"]["taskOutputArtifact"][
            "outputArtifactKey"
        ]
        == "pipelinechannel--write-number-out"
    )
    total = tasks["total"]
    assert total["dependentTasks"] == [loop_name]
    assert total["inputs"]["parameters"]["values"] == {
        "taskOutputParameter": {
            "producerTask": loop_name,
            "outputParameterKey": "pipelinechannel--square-Output",
        }
    }
    joined = tasks["join-files"]["inputs"]["artifacts"]["files"]
    assert joined == {
        "taskOutputArtifact": {
            "producerTask": loop_name,
            "outputArtifactKey": "pipelinechannel--write-number-out",
        }
    }
    assert ir["components"]["comp-join-files"]["inputDefinitions"]["artifacts"]["files"][
        "isArtifactList"
    ]


def test_if_elif_else_and_condition() -> None:
    ir = ir_of("conditions")
    tasks = ir["root"]["dag"]["tasks"]
    branches_name = next(n for n in tasks if n.startswith("condition-branches-"))
    branches = tasks[branches_name]
    assert branches["dependentTasks"] == ["flip"]
    assert branches["inputs"]["parameters"]["pipelinechannel--flip-Output"] == {
        "taskOutputParameter": {"producerTask": "flip", "outputParameterKey": "Output"}
    }
    inner = ir["components"][branches["componentRef"]["name"]]["dag"]["tasks"]
    conditions = sorted((t["triggerPolicy"]["condition"] for t in inner.values()), key=len)
    heads = "inputs.parameter_values['pipelinechannel--flip-Output'] == 'heads'"
    big = (
        "int(inputs.parameter_values['pipelinechannel--value']) > "
        "int(inputs.parameter_values['pipelinechannel--threshold'])"
    )
    assert conditions == [heads, f"!({heads}) && {big}", f"!({heads}) && !({big})"]
    single = next(t for n, t in tasks.items() if n.startswith("condition-") and "branches" not in n)
    assert single["triggerPolicy"]["condition"] == (
        "int(inputs.parameter_values['pipelinechannel--value']) == 3"
    )
    assert single["inputs"]["parameters"] == {
        "pipelinechannel--value": {"componentInputParameter": "value"}
    }
    # dsl.OneOf: the branches group exposes whichever branch's output exists.
    oneof_key = f"pipelinechannel--{branches_name}-oneof-1"
    branches_comp = ir["components"][branches["componentRef"]["name"]]
    selectors = branches_comp["dag"]["outputs"]["parameters"][oneof_key]["valueFromOneof"][
        "parameterSelectors"
    ]
    assert [s["outputParameterKey"] for s in selectors] == [
        "pipelinechannel--say-Output",
        "pipelinechannel--say-2-Output",
        "pipelinechannel--say-3-Output",
    ]
    for selector in selectors:
        branch = ir["components"][inner[selector["producerSubtask"]]["componentRef"]["name"]]
        assert selector["outputParameterKey"] in branch["dag"]["outputs"]["parameters"]
    assert tasks["say-5"]["inputs"]["parameters"]["message"] == {
        "taskOutputParameter": {"producerTask": branches_name, "outputParameterKey": oneof_key}
    }
    assert tasks["say-5"]["dependentTasks"] == [branches_name]
    # Display names reach taskInfo; task keys stay unique.
    names = {
        t["taskInfo"]["name"]
        for c in ir["components"].values()
        for t in c.get("dag", {}).get("tasks", {}).values()
    }
    assert {"say-heads", "say-big-tails", "say-small-tails", "say-three"} <= names


def test_exit_handler() -> None:
    ir = ir_of("exit_handler")
    tasks = ir["root"]["dag"]["tasks"]
    assert tasks["exit-handler-1"]["taskInfo"] == {"name": "guarded"}
    cleanup = tasks["cleanup"]
    assert cleanup["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert cleanup["dependentTasks"] == ["exit-handler-1"]
    assert cleanup["inputs"]["parameters"]["status"] == {
        "taskFinalStatus": {"producerTask": "exit-handler-1"}
    }
    assert ir["components"]["comp-cleanup"]["inputDefinitions"]["parameters"]["status"] == {
        "isOptional": True,
        "parameterType": "TASK_FINAL_STATUS",
    }
    inner = ir["components"]["comp-exit-handler-1"]
    assert inner["inputDefinitions"]["parameters"] == {
        "pipelinechannel--x": {"parameterType": "NUMBER_INTEGER"}
    }
    assert inner["dag"]["tasks"]["work-2"]["dependentTasks"] == ["work"]


def test_importer() -> None:
    module = golden.load_golden("importer")
    ir = ir_of("importer")
    executors = ir["deploymentSpec"]["executors"]
    assert executors["exec-importer"]["importer"] == {
        "artifactUri": {"constant": module.DATA_FILE},
        "typeSchema": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"},
        "metadata": {"source": "repo"},
    }
    assert executors["exec-importer-2"]["importer"]["artifactUri"] == {"runtimeParameter": "uri"}
    assert executors["exec-importer-2"]["importer"]["reimport"] is True
    assert ir["root"]["dag"]["tasks"]["importer-2"]["inputs"]["parameters"]["uri"] == {
        "componentInputParameter": "uri"
    }
    assert (
        ir["components"]["comp-importer"]["outputDefinitions"]["artifacts"]["artifact"][
            "artifactType"
        ]["schemaTitle"]
        == "system.Dataset"
    )


def test_nested_pipeline() -> None:
    ir = ir_of("nested")
    tasks = ir["root"]["dag"]["tasks"]
    first, second = tasks["add-and-double"], tasks["add-and-double-2"]
    assert second["inputs"]["parameters"]["a"] == {
        "taskOutputParameter": {"producerTask": "add-and-double", "outputParameterKey": "Output"}
    }
    assert second["inputs"]["parameters"]["b"] == {"runtimeValue": {"constant": 3.0}}
    inner = ir["components"][first["componentRef"]["name"]]
    assert "executorLabel" not in inner
    assert inner["dag"]["outputs"]["parameters"]["Output"] == {
        "valueFromParameter": {"producerSubtask": "double", "outputParameterKey": "Output"}
    }
    assert inner["dag"]["tasks"]["add"]["inputs"]["parameters"]["a"] == {
        "componentInputParameter": "a"
    }
    assert inner["inputDefinitions"]["parameters"]["b"]["defaultValue"] == 1.0
    # Each use of the sub-pipeline gets its own components, none overwritten.
    assert first["componentRef"]["name"] != second["componentRef"]["name"]
    assert sum(1 for c in ir["components"] if c.startswith("comp-add-")) >= 2


def test_task_methods() -> None:
    ir = ir_of("task_methods")
    tasks = ir["root"]["dag"]["tasks"]
    first = tasks["step"]
    assert first["taskInfo"] == {"name": "first step"}
    assert first["cachingOptions"] == {}
    assert first["retryPolicy"] == {
        "maxRetryCount": 2,
        "backoffDuration": "1s",
        "backoffFactor": 2.0,
        "backoffMaxDuration": "10s",
    }
    assert tasks["step-2"]["cachingOptions"] == {"enableCache": True}
    assert tasks["read-env"]["dependentTasks"] == ["step"]
    executors = ir["deploymentSpec"]["executors"]
    assert executors["exec-step-2"]["container"]["resources"] == {
        "resourceCpuRequest": "100m",
        "resourceCpuLimit": "1",
        "resourceMemoryRequest": "64Mi",
        "resourceMemoryLimit": "256Mi",
        # KFP still writes the deprecated numeric fields (cores, GB) for old servers.
        "cpuRequest": 0.1,
        "cpuLimit": 1.0,
        "memoryRequest": 0.067108864,
        "memoryLimit": 0.268435456,
    }
    assert executors["exec-read-env"]["container"]["env"] == [
        {"name": "GREETING", "value": "hello"}
    ]
    assert "resources" not in executors["exec-step"]["container"]


def test_single_output_pipeline() -> None:
    ir = ir_of("pipeline_outputs")
    assert ir["pipelineInfo"] == {"name": "golden-pipeline-outputs"}
    assert ir["root"]["outputDefinitions"] == {
        "parameters": {"Output": {"parameterType": "STRING"}}
    }


def _load_reference() -> Any:
    path = Path(__file__).resolve().parent / "kfp_reference.py"
    spec = importlib.util.spec_from_file_location("kubelab_kfp_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()


@pytest.mark.skipif(not reference.KFP_PYTHON.exists(), reason="no .venv-kfp with the real kfp SDK")
def test_goldens_match_real_kfp_compiler() -> None:
    """Same code through the real KFP SDK gives the same IR (bar the launcher command)."""
    paths = [GOLDEN_DIR / f"{name}.py" for name in golden.GOLDEN_NAMES]
    theirs = reference.compile_with_kfp(paths)
    for name, path in zip(golden.GOLDEN_NAMES, paths, strict=True):
        expected = theirs[str(path)]["spec"]
        assert reference.comparable(ir_of(name)) == reference.comparable(expected), name


def test_golden_helper_is_importable_as_package() -> None:
    """The engine tests import `golden` from tests/pipelines; check that path works too."""
    code = "import golden; print(len(golden.golden_modules()))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=GOLDEN_DIR.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(golden.GOLDEN_NAMES))
