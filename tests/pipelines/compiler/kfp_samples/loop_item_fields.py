"""KFP sample: loop item fields, compiled by kubelab and by the real kfp SDK."""

from kubelab.pipelines import dsl


@dsl.component
def step(x: int = 0, s: str = "") -> int:
    return x + 1


@dsl.component
def gen() -> list:
    return [{"a": 1, "b": "x"}]


@dsl.pipeline
def pipeline():
    with dsl.ParallelFor([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]) as item:
        step(x=item.a)
    g = gen()
    with dsl.ParallelFor(g.output) as it:
        step(x=it.a)
