"""KFP sample: one of, compiled by kubelab and by the real kfp SDK."""

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import Dataset, Input, Output


@dsl.component
def flip() -> str:
    return "heads"


@dsl.component
def say(m: str) -> str:
    return m


@dsl.component
def mk(out: Output[Dataset]):
    pass


@dsl.component
def use(d: Input[Dataset], s: str):
    pass


@dsl.pipeline
def pipeline() -> str:
    f = flip()
    with dsl.If(f.output == "heads"):
        a = say(m="a")
        da = mk()
    with dsl.Else():
        b = say(m="b")
        db = mk()
    x = dsl.OneOf(a.output, b.output)
    use(d=dsl.OneOf(da.outputs["out"], db.outputs["out"]), s=x)
    return x
