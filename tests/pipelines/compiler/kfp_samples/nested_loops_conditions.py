"""KFP sample: nested loops conditions, compiled by kubelab and by the real kfp SDK."""
# ruff: noqa: B006, UP006, UP035  -- ordinary KFP SDK code

from typing import List

from kubelab.pipelines import dsl


@dsl.component
def sq(x: int) -> int:
    return x


@dsl.component
def tot(xs: List[int]) -> int:
    return 0


@dsl.component
def fin(status: dsl.PipelineTaskFinalStatus, msg: str):
    pass


@dsl.component
def f(x: float, b: bool) -> float:
    return x


@dsl.pipeline
def pipeline(xs: list = [1, 2], rate: float = 0.5, on: bool = True, msg: str = "m"):
    e = fin(msg=msg)
    with dsl.ExitHandler(e):
        a = f(x=rate, b=on)
        with dsl.ParallelFor(xs, parallelism=3) as x:
            with dsl.ParallelFor([3, 4]) as y:
                s = sq(x=y)
                with dsl.If(y == 3):
                    sq(x=x)
            tot(xs=dsl.Collected(s.output))
        with dsl.If(a.output > 0.25):
            f(x=a.output, b=False)
        with dsl.Condition(on == True):  # noqa: E712 - builds a condition
            sq(x=1).after(a)
