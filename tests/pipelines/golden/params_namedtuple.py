"""Golden: typed parameters with defaults and Optional, NamedTuple outputs."""
# ruff: noqa: B006, UP014, UP045  -- written as ordinary KFP SDK code

from typing import NamedTuple, Optional

from kubelab.pipelines import dsl


@dsl.component
def add(a: int, b: float = 0.5) -> float:
    return a + b


@dsl.component
def stats(
    xs: list,
    scale: float,
    label: Optional[str] = None,
    opts: dict = {"digits": 2},
) -> NamedTuple("Stats", [("total", float), ("count", int), ("label", str), ("big", bool)]):
    stats_type = NamedTuple(
        "Stats", [("total", float), ("count", int), ("label", str), ("big", bool)]
    )
    total = round(sum(xs) * scale, opts["digits"])
    return stats_type(total, len(xs), label or "none", total > 10)


@dsl.component
def describe(total: float, count: int, label: str, big: bool) -> str:
    return f"{label}:{count}:{total}:{big}"


@dsl.pipeline(name="golden-params", description="Parameters and NamedTuple outputs.")
def pipeline(
    a: int = 3,
    xs: list = [1, 2, 3],
    scale: float = 2.0,
    label: str = "run",
) -> NamedTuple("Outputs", [("sum", float), ("summary", str), ("count", int)]):
    total = add(a=a, b=1.5)
    st = stats(xs=xs, scale=scale, label=label)
    summary = describe(
        total=st.outputs["total"],
        count=st.outputs["count"],
        label=st.outputs["label"],
        big=st.outputs["big"],
    )
    outputs = NamedTuple("Outputs", [("sum", float), ("summary", str), ("count", int)])
    return outputs(sum=total.output, summary=summary.output, count=st.outputs["count"])


ARGUMENTS = {"a": 4, "xs": [1, 2, 3, 4], "scale": 1.5}
EXPECTED_OUTPUTS = {"sum": 5.5, "summary": "run:4:15.0:True", "count": 4}
