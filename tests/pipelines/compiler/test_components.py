"""`kubelab.pipelines.components`: loading shared components from text, files and URLs,
in both KFP formats, and the errors a wrong file gets. (That the loaded components
compile to kfp's IR is checked by kfp_samples/components_*.py.)"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab.pipelines import compiler, components, dsl
from kubelab.pipelines.dsl import types
from kubelab.pipelines.errors import KubelabError, NotFoundError

V1 = """
name: Train Model
description: Trains it.
inputs:
- {name: Learning rate, type: Float, default: '0.1'}
- {name: Epochs, type: Integer, optional: true}
- {name: Use GPU, type: Boolean, default: 'true'}
- {name: Options, type: JsonObject, default: '{"seed": 1}'}
- {name: Data, type: Dataset}
- {name: Table, type: {BigQueryTable: {}}}
- {name: Base, type: google.VertexModel}
outputs:
- {name: Model, type: Model}
- {name: Score, type: Float}
implementation:
  container:
    image: trainer:1
    command: [train, {inputValue: Learning rate}, {outputPath: Score}, {outputPath: Model}]
"""


def test_v1_interface_follows_kfp_types() -> None:
    train = components.load_component_from_text(V1)
    assert train.name == "train-model"
    assert train.description == "Trains it."
    inputs = train.inputs
    assert inputs["learning_rate"].parameter_type == types.NUMBER_DOUBLE
    assert inputs["learning_rate"].default == 0.1  # v1 defaults are strings: cast as KFP does
    assert inputs["epochs"].optional and not inputs["epochs"].has_default
    assert inputs["use_gpu"].default is True
    assert inputs["options"].default == {"seed": 1}
    assert inputs["data"].artifact_class is dsl.Dataset
    assert inputs["table"].artifact_class is dsl.Artifact  # unknown types are artifacts
    assert inputs["base"].artifact_class.schema_title == "google.VertexModel"
    assert train.outputs["score"].parameter_type == types.NUMBER_DOUBLE
    assert train.executor_spec() == {
        "container": {
            "image": "trainer:1",
            "command": [
                "train",
                "{{$.inputs.parameters['learning_rate']}}",
                "{{$.outputs.parameters['score'].output_file}}",
                "{{$.outputs.artifacts['model'].path}}",
            ],
        }
    }


def test_loaded_component_needs_its_required_inputs() -> None:
    train = components.load_component_from_text(V1)
    with pytest.raises(KubelabError, match="missing required input 'data'"):

        @dsl.pipeline
        def p():
            train(table=None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nimplementation: [", "is not valid YAML"),
        ("name: x\ninputs: []\n", "neither a v1 component.yaml"),
        ("a: 1\n---\nb: 2\n---\nc: 3\n", "3 YAML document"),
        ("name: x\nimplementation:\n  graph: {}\n", "only container components"),
        (
            "name: x\nimplementation:\n  container:\n    image: i\n    args: [{outputPath: nope}]\n",
            r"\{outputPath: nope\} names no declared output",
        ),
        (
            "name: x\nimplementation:\n  container:\n    image: i\n    args: [{magic: y}]\n",
            "unknown placeholder 'magic'",
        ),
    ],
)
def test_bad_component_yaml_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(KubelabError, match=message):
        components.load_component_from_text(text)


def test_file_loader_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="Component file not found"):
        components.load_component_from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nimplementation: [")
    with pytest.raises(KubelabError, match=r"bad\.yaml is not valid YAML"):
        components.load_component_from_file(bad)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server over a directory holding component files."""
    (tmp_path / "train.yaml").write_text(V1)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_loader_fetches_over_http(served: str) -> None:
    train = components.load_component_from_url(f"{served}/train.yaml")
    assert train.name == "train-model"
    with pytest.raises(KubelabError, match="Cannot load the component at"):
        components.load_component_from_url(f"{served}/missing.yaml")


def test_url_loader_refuses_other_schemes_and_dead_hosts() -> None:
    with pytest.raises(KubelabError, match="http"):
        components.load_component_from_url("file:///etc/passwd")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(KubelabError, match="Cannot load the component"):
        components.load_component_from_url(f"http://127.0.0.1:{port}/c.yaml")


@dsl.component
def add(a: int, b: int = 1) -> int:
    """Adds numbers."""
    return a + b


def test_compiled_component_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "add.yaml"
    compiler.Compiler().compile(add, str(path))
    loaded = components.load_component_from_file(path)
    assert loaded.name == "add"
    assert loaded.description == "Adds numbers."
    assert loaded.inputs["b"].default == 1.0 and loaded.inputs["b"].optional
    assert loaded.pipeline_spec is None and loaded.runs_in_container
    # Compiled again as a pipeline of its own, it gives the same IR.
    again = compiler.build_pipeline_spec(loaded)
    assert again["deploymentSpec"] == compiler.build_pipeline_spec(add)["deploymentSpec"]


def test_import_kubelab_pipelines_as_kfp() -> None:
    import kubelab.pipelines as kfp

    assert kfp.dsl.component is dsl.component
    assert kfp.compiler.Compiler is compiler.Compiler
    assert kfp.components.load_component_from_text is components.load_component_from_text
    assert kfp.kubernetes.mount_pvc is dsl.kubernetes.mount_pvc
    from kubelab.client import Client

    assert kfp.Client is Client  # `from kfp import Client`, the one client of runs and jobs
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = kfp.nothing
