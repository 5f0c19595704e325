"""The local engine runs what the compiler now writes for KFP users' pipelines:
f-strings, fields of loop items, typed loop items, dsl.Collected through conditions,
components loaded from YAML, artifacts returned by functions, embedded files,
importer metadata and the workspace, a pipeline as exit task, notebook components."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

from kubelab.client.store import RunStore
from kubelab.pipelines import compiler, components, dsl, local
from kubelab.pipelines.dsl import Dataset, Model


@dsl.component
def echo(text: str) -> str:
    return text


@dsl.component
def join_texts(texts: list) -> str:
    return ",".join(str(t) for t in texts)


@dsl.component
def double(num: int) -> int:
    return 2 * num


@dsl.component
def total(nums: list) -> int:
    return sum(nums)


# --------------------------------------------------------------- f-strings, settings
@dsl.component
def cpu() -> str:
    return "1"


@dsl.pipeline(name="formatted")
def formatted(name: str = "world") -> str:
    first = echo(text=f"hello {name}")
    second = echo(text=f"{first.output}, again").set_cpu_limit(cpu().output)
    return echo(text="[%s]" % second.output).output  # noqa: UP031 - KFP users write this


def test_fstrings_and_run_time_settings(session: RunStore) -> None:
    assert formatted(name="kubelab").output == "[hello kubelab, again]"


# ---------------------------------------------------------------- loops and fields
@dsl.pipeline(name="loop-fields")
def loop_fields(
    rows: list = [{"letters": ["a", "b"], "kind": "x"}, {"letters": ["c"], "kind": "y"}],  # noqa: B006
    numbers: list[int] = [1, 2, 3],  # noqa: B006
) -> NamedTuple("Out", [("letters", str), ("kinds", str), ("big", int)]):
    with dsl.ParallelFor(rows) as row:
        with dsl.ParallelFor(row.letters) as letter:
            letter_echo = echo(text=letter)
        letters = join_texts(texts=dsl.Collected(letter_echo.output))
        with dsl.If(row.kind == "x"):
            kinds = echo(text=row.kind)
    with dsl.ParallelFor(numbers) as n, dsl.If(n > 1):
        doubled = double(num=n)
    Out = NamedTuple("Out", [("letters", str), ("kinds", str), ("big", int)])  # noqa: UP014
    return Out(
        join_texts(texts=dsl.Collected(letters.output)).output,
        join_texts(texts=dsl.Collected(kinds.output)).output,
        total(nums=dsl.Collected(doubled.output)).output,
    )


def test_loop_item_fields_nested_loops_and_typed_items(session: RunStore) -> None:
    outputs = loop_fields().outputs
    assert sorted(outputs["letters"].split(",")) == ["a", "b", "c"]
    assert outputs["kinds"] == "x"
    assert outputs["big"] == 10  # 2*2 + 2*3: the condition compared numbers


@dsl.pipeline(name="collected-conditions")
def collected_through_conditions(threshold: int = 2) -> int:
    with dsl.ParallelFor([1, 2, 3]) as x, dsl.Condition(x >= threshold):
        doubled = double(num=x)
    with dsl.Condition(threshold == 2):
        # A consumer in another group reads the list the loop surfaced.
        total(nums=dsl.Collected(doubled.output))
    return total(nums=dsl.Collected(doubled.output)).output


def test_collected_through_conditions(session: RunStore) -> None:
    task = collected_through_conditions()
    assert task.output == 10  # 2*2 + 2*3: iterations whose condition was false left nothing
    steps = {s["name"]: s for s in task.result.run()["steps"]}
    assert steps["condition-4/total"]["outputs"] == {"Output": 10}


# ------------------------------------------------------------------ YAML components
COUNT_WORDS = """
name: Count words
inputs:
- {name: Text, type: String}
- {name: Suffix, type: String, optional: true}
outputs:
- {name: Count, type: Integer}
- {name: Words, type: Dataset}
implementation:
  container:
    image: python:3.11
    command: [sh, -c]
    args:
    - |
      echo "$0" | wc -w | tr -d ' ' > "$1"
      mkdir -p "$(dirname "$2")"
      echo "$0$3" > "$2"
    - {inputValue: Text}
    - {outputPath: Count}
    - {outputPath: Words}
    - if:
        cond: {isPresent: Suffix}
        then: [{concat: [" ", {inputValue: Suffix}]}]
        else: ["!"]
"""


@dsl.component
def read_dataset(data: dsl.Input[Dataset]) -> str:
    with open(data.path) as f:
        return f.read().strip()


count_words = components.load_component_from_text(COUNT_WORDS)


@dsl.pipeline(name="v1-component")
def v1_component(text: str = "one two three") -> NamedTuple(
    "Out", [("count", int), ("plain", str), ("suffixed", str)]
):
    plain = count_words(text=text)
    suffixed = count_words(text=text, suffix="four")
    Out = NamedTuple("Out", [("count", int), ("plain", str), ("suffixed", str)])  # noqa: UP014
    return Out(
        plain.outputs["count"],
        read_dataset(data=plain.outputs["words"]).output,
        read_dataset(data=suffixed.outputs["words"]).output,
    )


def test_v1_component_yaml_runs(session: RunStore) -> None:
    outputs = v1_component().outputs
    assert outputs == {"count": 3, "plain": "one two three!", "suffixed": "one two three four"}


@dsl.component
def add(a: int, b: int = 1) -> int:
    return a + b


@dsl.pipeline(name="inner")
def inner(x: int = 3) -> int:
    return add(a=add(a=x).output, b=x).output


def test_compiled_component_and_pipeline_yaml_run(session: RunStore, tmp_path: Path) -> None:
    compiler.Compiler().compile(add, str(tmp_path / "add.yaml"))
    compiler.Compiler().compile(inner, str(tmp_path / "inner.yaml"))
    loaded_add = components.load_component_from_file(tmp_path / "add.yaml")
    loaded_inner = components.load_component_from_file(str(tmp_path / "inner.yaml"))

    @dsl.pipeline(name="outer")
    def outer(n: int = 2) -> int:
        return loaded_inner(x=loaded_add(a=n, b=5).output).output

    assert outer().output == 15  # (7 + 1) + 7
    assert loaded_add(a=4).output == 5  # called on its own, as a component


# ------------------------------------------- artifacts returned, embedded, helpers
def shout(text: str) -> str:
    return text.upper()


@dsl.component(additional_funcs=[shout])
def greet(name: str) -> str:
    return shout(name)


ASSETS = tempfile.mkdtemp(prefix="kubelab-test-assets-")
with open(os.path.join(ASSETS, "vocab.txt"), "w") as _handle:
    _handle.write("a b c d")


@dsl.component(embedded_artifact_path=ASSETS)
def vocab_size(vocab: dsl.EmbeddedInput[Dataset]) -> int:
    import os

    with open(os.path.join(vocab.path, "vocab.txt")) as f:
        return len(f.read().split())


@dsl.component
def make(text: str) -> Dataset:
    dataset = Dataset(uri=dsl.get_uri(), metadata={"length": len(text)})
    with open(dataset.path, "w") as f:
        f.write(text)
    return dataset


@dsl.component
def train(data: list[Dataset]) -> NamedTuple("Out", [("model", Model), ("rows", int)]):
    texts = []
    for item in data:
        with open(item.path) as f:
            texts.append(f.read())
    model = Model(uri=dsl.get_uri("model"), metadata={"texts": sorted(texts)})
    with open(model.path, "w") as f:
        f.write("+".join(sorted(texts)))
    Out = NamedTuple("Out", [("model", Model), ("rows", int)])  # noqa: UP014
    return Out(model, len(data))


@dsl.pipeline(name="pythonic")
def pythonic(name: str = "kubelab") -> NamedTuple(
    "Out", [("greeting", str), ("vocab", int), ("model", Model), ("rows", int)]
):
    with dsl.ParallelFor(["x", "yy"]) as text:
        made = make(text=text)
    trained = train(data=dsl.Collected(made.output))
    Out = NamedTuple(  # noqa: UP014
        "Out", [("greeting", str), ("vocab", int), ("model", Model), ("rows", int)]
    )
    return Out(
        greet(name=name).output,
        vocab_size().output,
        trained.outputs["model"],
        trained.outputs["rows"],
    )


def test_returned_artifacts_embedded_files_and_helpers(session: RunStore) -> None:
    outputs = pythonic().outputs
    assert outputs["greeting"] == "KUBELAB"
    assert outputs["vocab"] == 4
    assert outputs["rows"] == 2
    model = outputs["model"]
    assert isinstance(model, Model)
    assert Path(model.path).read_text() == "x+yy"
    assert Path(model.path).name == "model"  # dsl.get_uri("model"), under the task's directory
    assert model.metadata == {"texts": ["x", "yy"]}


# --------------------------------------------------------- importer and workspace
@dsl.component
def version() -> str:
    return "v2"


@dsl.component
def describe(data: dsl.Input[Dataset], workspace: str) -> str:
    import os

    with open(data.path) as f:
        content = f.read()
    inside = os.path.commonpath([data.path, workspace]) == workspace
    return f"{content}|{data.metadata['release']}|{data.metadata['owners']}|{inside}"


@dsl.pipeline(
    name="importer-workspace",
    pipeline_config=dsl.PipelineConfig(workspace=dsl.WorkspaceConfig(size="1Gi")),
)
def importer_workspace(uri: str, owner: str = "me") -> str:
    tag = version()
    imported = dsl.importer(
        artifact_uri=uri,
        artifact_class=Dataset,
        metadata={"release": f"release-{tag.output}", "owners": [owner, "team"]},
        download_to_workspace=True,
    )
    return describe(data=imported.output, workspace=dsl.WORKSPACE_PATH_PLACEHOLDER).output


def test_importer_metadata_channels_and_workspace(session: RunStore, tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    source.write_text("a,b")
    result = importer_workspace(uri=str(source)).output
    assert result == "a,b|release-v2|['me', 'team']|True"


# -------------------------------------------------------- exit task as a pipeline
@dsl.component
def state_of(status: dict) -> str:
    return status["state"]


@dsl.component
def write(path: str, message: str):
    with open(path, "w") as f:
        f.write(message)


@dsl.component
def fail():
    raise RuntimeError("failing on purpose")


@dsl.pipeline(name="notify")
def notify(marker: str, status: dsl.PipelineTaskFinalStatus):
    with dsl.If(state_of(status=status).output == "FAILED"):
        write(path=marker, message="notified")


@dsl.pipeline(name="guarded")
def guarded(marker: str):
    exit_task = notify(marker=marker)
    with dsl.ExitHandler(exit_task):
        fail()


def test_pipeline_as_exit_task_reads_the_final_status(session: RunStore, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    local.init(
        runner=local.SubprocessRunner(),
        pipeline_root=str(tmp_path / "outputs"),
        store=session,
        raise_on_error=False,
    )
    task = guarded(marker=str(marker))
    assert task.state == "failed"
    assert marker.read_text() == "notified"


# ------------------------------------------------------------- container list arg
@dsl.container_component
def count_items(items: dsl.Input[list[Dataset]], count: dsl.OutputPath(int)):
    return dsl.ContainerSpec(
        image="python:3.11",
        command=["python3", "-c"],
        args=[
            "import json, sys; open(sys.argv[2], 'w').write(str(len(json.loads(sys.argv[1]))))",
            items,
            count,
        ],
    )


@dsl.pipeline(name="list-argument")
def list_argument() -> int:
    with dsl.ParallelFor(["a", "b", "c"]) as text:
        made = make(text=text)
    return count_items(items=dsl.Collected(made.output)).output


def test_list_of_artifacts_as_a_container_argument(session: RunStore) -> None:
    assert list_argument().output == 3


# --------------------------------------------------------------------- notebooks
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": "text = 'default'\nsuffix = '!'",
            "outputs": [],
            "execution_count": None,
        },
        {
            "cell_type": "code",
            "metadata": {},
            "source": "print('running')\nopen(target, 'w').write(text + suffix)",
            "outputs": [],
            "execution_count": None,
        },
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
NOTEBOOK_DIR = tempfile.mkdtemp(prefix="kubelab-test-nb-")
with open(os.path.join(NOTEBOOK_DIR, "train.ipynb"), "w") as _handle:
    json.dump(NOTEBOOK, _handle)


@dsl.notebook_component(notebook_path=NOTEBOOK_DIR, packages_to_install=[])
def run_train(text: str, target: str) -> str:
    dsl.run_notebook(text=text, target=target)
    with open(target) as f:
        return f.read()


def test_notebook_component_runs_its_notebook_with_parameters(
    session: RunStore, tmp_path: Path
) -> None:
    target = tmp_path / "out.txt"
    assert run_train(text="hello", target=str(target)).output == "hello!"


@dsl.pipeline(name="condition-types")
def condition_types(items: list = [1, 2, 3], count: int = 2) -> NamedTuple(  # noqa: B006
    "Out", [("items", list), ("count", list)]
):
    # An untyped list's items are STRING: KFP compares them with '2', whatever they hold.
    with dsl.ParallelFor(items) as item, dsl.If(item == 2):
        picked = echo(text="two")
    with dsl.ParallelFor([1]), dsl.If(count > 1.5):  # an int and a float: as doubles
        more = echo(text="more")
    Out = NamedTuple("Out", [("items", list), ("count", list)])  # noqa: UP014
    return Out(dsl.Collected(picked.output), dsl.Collected(more.output))


def test_conditions_promote_operand_types_as_kfp_does(session: RunStore) -> None:
    assert condition_types().outputs == {"items": ["two"], "count": ["more"]}
