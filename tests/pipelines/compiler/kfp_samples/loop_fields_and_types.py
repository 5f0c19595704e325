"""KFP sample: fields of loop items in conditions and nested loops, and typed loop
items, compiled by kubelab and by kfp."""
# ruff: noqa: B006, SIM117, UP006, UP035  -- ordinary KFP SDK code

from typing import Dict, List

from kubelab.pipelines import dsl


@dsl.component
def step(x: int = 0, s: str = "") -> int:
    return x + 1


@dsl.component
def rows() -> List[Dict[str, int]]:
    return [{"a": 1, "b": 2}]


@dsl.pipeline
def pipeline(
    plain: list = [{"p": [1, 2], "q": "x"}],
    numbers: List[int] = [1, 2, 3],
):
    with dsl.ParallelFor(plain) as item:
        with dsl.Condition(item.q == "x"):
            step(s=item.q)
        with dsl.ParallelFor(item.p) as inner:
            step(s=inner)
    with dsl.ParallelFor(numbers) as n:
        with dsl.If(n > 1):
            step(x=n)
    with dsl.ParallelFor(rows().output) as row:
        with dsl.If(row.a == 1):
            step(x=row.b)
    with dsl.ParallelFor([{"k": 1, "v": "x"}]) as raw:
        step(x=raw.k)
