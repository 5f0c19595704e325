"""KFP sample: conditions comparing operands of different types (an untyped loop item
with a number, an int with a float, bools), compiled by kubelab and by kfp."""
# ruff: noqa: B006, SIM117  -- ordinary KFP SDK code

from kubelab.pipelines import dsl


@dsl.component
def step(x: str = "") -> str:
    return x


@dsl.component
def score() -> float:
    return 0.5


@dsl.pipeline
def pipeline(items: list = [1, 2, 3], count: int = 2, flag: bool = True, name: str = "a"):
    with dsl.ParallelFor(items) as item:
        with dsl.If(item == 2):
            step(x="two")
    with dsl.If(count > 1.5):
        step(x="more")
    with dsl.If(flag == True):  # noqa: E712 - a pipeline comparison, not a Python one
        step(x="flag")
    with dsl.If(score().output >= 1):
        step(x="high")
    with dsl.If(name != "b"):
        step(x=name)
