"""Compiler entry points: compile(), build_pipeline_spec(), load_pipeline_file()."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubelab.pipelines import compiler, dsl
from kubelab.pipelines.dsl import Dataset, Output
from kubelab.pipelines.errors import KubelabError, NotFoundError


@dsl.component(base_image="python:3.12-slim", packages_to_install=["pandas==2.2.2", "scikit-learn"])
def scale(x: float, factor: float = 2.0) -> float:
    return x * factor


@dsl.component
def produce(rows: int, data: Output[Dataset]):
    pass


def test_single_component_compiles_like_kfp(tmp_path: Path) -> None:
    path = tmp_path / "component.yaml"
    compiler.Compiler().compile(scale, str(path))
    ir = yaml.safe_load(path.read_text())
    json_format.ParseDict(ir, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    assert ir["pipelineInfo"]["name"] == "scale"
    assert ir["root"]["inputDefinitions"]["parameters"] == {
        "x": {"parameterType": "NUMBER_DOUBLE"},
        "factor": {"defaultValue": 2.0, "isOptional": True, "parameterType": "NUMBER_DOUBLE"},
    }
    assert ir["root"]["dag"]["tasks"]["scale"]["inputs"]["parameters"] == {
        "x": {"componentInputParameter": "x"},
        "factor": {"componentInputParameter": "factor"},
    }
    assert ir["root"]["dag"]["outputs"]["parameters"]["Output"] == {
        "valueFromParameter": {"producerSubtask": "scale", "outputParameterKey": "Output"}
    }
    container = ir["deploymentSpec"]["executors"]["exec-scale"]["container"]
    assert container["image"] == "python:3.12-slim"
    install = container["command"][2]
    # Packages are installed only when missing or installed in a version the pin refuses.
    assert "if ! python3 -m kubelab.pipelines.requirements pandas==2.2.2 scikit-learn; then" in (
        install
    )
    assert "pip install --quiet --no-warn-script-location pandas==2.2.2 scikit-learn" in install
    assert install.endswith('"$0" "$@"\n')


def test_artifact_component_outputs() -> None:
    ir = compiler.build_pipeline_spec(produce)
    assert ir["root"]["dag"]["outputs"]["artifacts"]["data"] == {
        "artifactSelectors": [{"producerSubtask": "produce", "outputArtifactKey": "data"}]
    }


def test_pipeline_parameters_become_defaults() -> None:
    @dsl.pipeline(name="with-params", description="Scales a number.")
    def p(x: float, label: str = "a"):
        scale(x=x)

    ir = compiler.build_pipeline_spec(p, {"x": 3, "label": "b"})
    params = ir["root"]["inputDefinitions"]["parameters"]
    # As in KFP, a default given at compile time does not make the input optional.
    assert params["x"] == {"defaultValue": 3.0, "parameterType": "NUMBER_DOUBLE"}
    assert params["label"]["isOptional"] is True
    assert params["label"]["defaultValue"] == "b"
    assert ir["pipelineInfo"] == {"name": "with-params", "description": "Scales a number."}
    # The pure builder does not change the pipeline itself.
    assert (
        "defaultValue"
        not in compiler.build_pipeline_spec(p)["root"]["inputDefinitions"]["parameters"]["x"]
    )


def test_yaml_header_and_json_output(tmp_path: Path) -> None:
    @dsl.pipeline(name="hdr")
    def p(x: float = 1.0) -> float:
        return scale(x=x).output

    yaml_path = tmp_path / "p.yaml"
    compiler.Compiler().compile(p, str(yaml_path))
    text = yaml_path.read_text()
    assert text.startswith(
        "# PIPELINE DEFINITION\n# Name: hdr\n# Inputs:\n#    x: float [Default: 1.0]\n"
        "# Outputs:\n#    Output: float\n"
    )
    json_path = tmp_path / "p.json"
    compiler.Compiler().compile(p, str(json_path))
    assert json.loads(json_path.read_text()) == yaml.safe_load(text)


def test_failed_compile_keeps_previous_file(tmp_path: Path) -> None:
    @dsl.pipeline
    def cyclic():
        a = scale(x=1.0)
        b = scale(x=2.0)
        a.after(b)
        b.after(a)

    path = tmp_path / "p.yaml"
    path.write_text("previous content\n")
    with pytest.raises(KubelabError):
        compiler.Compiler().compile(cyclic, str(path))
    assert path.read_text() == "previous content\n"


def test_platform_spec_document_only_when_needed(tmp_path: Path) -> None:
    @dsl.pipeline
    def gpu():
        task = scale(x=1.0).set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(2)
        task.platform_config["kubernetes"] = {
            "nodeSelector": {"labels": {"accelerator": "a100"}},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
        }

    path = tmp_path / "gpu.yaml"
    compiler.Compiler().compile(gpu, str(path))
    spec, platform = list(yaml.safe_load_all(path.read_text()))
    resources = spec["deploymentSpec"]["executors"]["exec-scale"]["container"]["resources"]
    assert resources == {
        "accelerator": {
            "resourceType": "nvidia.com/gpu",
            "resourceCount": "2",
            "type": "nvidia.com/gpu",
            "count": "2",
        }
    }
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec(), ignore_unknown_fields=False)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-scale"]["nodeSelector"] == {"labels": {"accelerator": "a100"}}
    with pytest.raises(KubelabError, match="only the YAML"):
        compiler.Compiler().compile(gpu, str(tmp_path / "gpu.json"))


def _write(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


PIPELINE_FILE = """
    from kubelab.pipelines import dsl

    @dsl.component
    def hello(name: str) -> str:
        return "hi " + name

    @dsl.pipeline
    def first(name: str = "a"):
        hello(name=name)
"""


def test_load_pipeline_file_single(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.py", PIPELINE_FILE)
    pipeline = compiler.load_pipeline_file(str(path))
    assert isinstance(pipeline, dsl.GraphComponent) and pipeline.name == "first"
    ir = compiler.build_pipeline_spec(pipeline)
    assert (
        "def hello(name: str) -> str:"
        in (ir["deploymentSpec"]["executors"]["exec-hello"]["container"]["command"][6])
    )


def test_load_pipeline_file_several_lists_candidates(tmp_path: Path) -> None:
    body = textwrap.dedent(PIPELINE_FILE) + textwrap.dedent(
        """
        @dsl.pipeline
        def second():
            hello(name="b")
        """
    )
    path = _write(tmp_path / "two.py", body)
    with pytest.raises(KubelabError, match=r"several pipelines \(first, second\)") as info:
        compiler.load_pipeline_file(str(path))
    assert info.value.details["candidates"] == ["first", "second"]
    assert compiler.load_pipeline_file(str(path), "second").name == "second"
    with pytest.raises(KubelabError, match=r"no pipeline or component named 'third'.*first"):
        compiler.load_pipeline_file(str(path), "third")


def test_load_pipeline_file_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        compiler.load_pipeline_file(str(tmp_path / "missing.py"))
    empty = _write(tmp_path / "empty.py", "x = 1\n")
    with pytest.raises(KubelabError, match=r"defines no @dsl\.pipeline"):
        compiler.load_pipeline_file(str(empty))
    broken = _write(tmp_path / "broken.py", "import os\n\nraise ValueError('boom')\n")
    with pytest.raises(KubelabError, match=r"broken.py, line 3 failed: ValueError: boom") as info:
        compiler.load_pipeline_file(str(broken))
    assert info.value.details["line"] == 3
    bad_wiring = _write(
        tmp_path / "wiring.py",
        PIPELINE_FILE.replace("hello(name=name)", "hello(nam=name)"),
    )
    with pytest.raises(KubelabError, match="unexpected keyword argument 'nam'"):
        compiler.load_pipeline_file(str(bad_wiring))
