"""KFP sample: helper functions shipped with a component, an embedded artifact, and
artifacts returned by the function, compiled by kubelab and by kfp."""
# ruff: noqa: UP006, UP014, UP035  -- ordinary KFP SDK code

import os
import tempfile
from typing import List, NamedTuple

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import Dataset, Model

ASSETS = tempfile.mkdtemp()
with open(os.path.join(ASSETS, "vocab.txt"), "w") as handle:
    handle.write("a b c")


def shout(text: str) -> str:
    return text.upper()


@dsl.component(additional_funcs=[shout])
def greet(name: str) -> str:
    return shout(name)


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
def train(data: List[Dataset]) -> NamedTuple("Out", [("model", Model), ("rows", int)]):
    model = Model(uri=dsl.get_uri("model"))
    with open(model.path, "w") as f:
        f.write(str(len(data)))
    Out = NamedTuple("Out", [("model", Model), ("rows", int)])
    return Out(model, len(data))


@dsl.pipeline
def pipeline(name: str = "kubelab"):
    greet(name=name)
    vocab_size()
    with dsl.ParallelFor(["x", "yy"]) as text:
        made = make(text=text)
    train(data=dsl.Collected(made.output))
