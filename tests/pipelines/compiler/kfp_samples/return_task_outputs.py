"""KFP sample: a pipeline returning a task's .outputs under a NamedTuple annotation,
compiled by kubelab and by kfp."""

from typing import NamedTuple

from kubelab.pipelines import dsl


@dsl.component
def two(n: int) -> NamedTuple("Out", [("count", int), ("label", str)]):
    return (n, str(n))


@dsl.pipeline
def pipeline(n: int = 1) -> NamedTuple("Out", [("count", int), ("label", str)]):
    return two(n=n).outputs
