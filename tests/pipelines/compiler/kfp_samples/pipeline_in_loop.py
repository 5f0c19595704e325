"""KFP sample: pipeline in loop, compiled by kubelab and by the real kfp SDK."""
# ruff: noqa: B006, UP006, UP035  -- ordinary KFP SDK code

from typing import List

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import Dataset, Input, Model, Output


@dsl.component
def use(d: Input[Dataset], job: str, x: int) -> int:
    return x


@dsl.component
def mk(m: Output[Model]):
    pass


@dsl.pipeline
def inner(d: Input[Dataset], x: int) -> Model:
    use(d=d, job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, x=x)
    return mk().outputs["m"]


@dsl.component
def agg(ms: Input[List[Model]]):
    pass


@dsl.pipeline
def pipeline(d: Input[Dataset], xs: list = [1, 2]):
    with dsl.ParallelFor(xs) as x:
        i = inner(d=d, x=x)
    agg(ms=dsl.Collected(i.output))
