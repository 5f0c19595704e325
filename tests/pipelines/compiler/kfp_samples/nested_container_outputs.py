"""KFP sample: nested container outputs, compiled by kubelab and by the real kfp SDK."""
# ruff: noqa: B006, UP014, UP045  -- ordinary KFP SDK code

from typing import NamedTuple, Optional

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import (
    ConcatPlaceholder,
    Dataset,
    IfPresentPlaceholder,
    InputPath,
    Output,
    OutputPath,
)


@dsl.container_component
def say(text: str, out: OutputPath(str), d: Output[Dataset], opt: Optional[str] = None):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", f"echo {text}"],
        args=[
            text,
            out,
            d.path,
            d.uri,
            ConcatPlaceholder(["a", text]),
            IfPresentPlaceholder(input_name="opt", then=["--opt", opt]),
        ],
    )


@dsl.component
def nt(
    a: int,
    p: InputPath("Dataset"),
    q: OutputPath("Model"),
    r: OutputPath(int),
    cfg: dict = {"a": 1},
    xs: list = [1],
    f: Optional[float] = None,
    b: bool = True,
) -> NamedTuple("O", [("s", str), ("n", int)]):
    pass


@dsl.pipeline
def inner(x: str = "hi") -> str:
    s = say(text=x)
    return s.outputs["out"]


@dsl.pipeline(name="outer", description="desc")
def pipeline(y: str) -> NamedTuple("PO", [("a", str), ("b", Dataset)]):
    i = inner(x=y)
    s = say(text=i.output)
    n = nt(a=1, p=s.outputs["d"])
    PO = NamedTuple("PO", [("a", str), ("b", Dataset)])
    return PO(a=n.outputs["s"], b=s.outputs["d"])
