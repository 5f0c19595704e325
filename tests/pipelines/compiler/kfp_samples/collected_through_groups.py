"""KFP sample: dsl.Collected through conditions and into other groups, compiled by
kubelab and by kfp."""
# ruff: noqa: SIM117, UP006, UP035  -- ordinary KFP SDK code

from typing import List

from kubelab.pipelines import dsl


@dsl.component
def double(num: int) -> int:
    return 2 * num


@dsl.component
def total(nums: List[int]) -> int:
    return sum(nums)


@dsl.pipeline
def pipeline(threshold: int = 2) -> List[int]:
    with dsl.ParallelFor([1, 2, 3]) as x:
        with dsl.Condition(x >= threshold):
            doubled = double(num=x)
    with dsl.Condition(threshold == 2):
        summed = total(nums=dsl.Collected(doubled.output))
    with dsl.ParallelFor([4, 5]) as y:
        total(nums=dsl.Collected(doubled.output)).after(double(num=y))
    return dsl.Collected(summed.output)
