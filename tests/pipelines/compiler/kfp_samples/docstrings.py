"""KFP sample: docstrings, compiled by kubelab and by the real kfp SDK."""

from typing import NamedTuple

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import Dataset, Output


@dsl.component
def a(x: int, d: Output[Dataset], y: str = "q") -> NamedTuple("O", [("s", str)]):
    """Adds things.

    Longer text here.

    Args:
        x: The x value.
        d: Where data goes.
        y: Some y.

    Returns:
        s: The result.
    """
    return ("",)


@dsl.pipeline
def pipeline(n: int = 1):
    """My pipeline does stuff.

    Args:
        n: How many.
    """
    a(x=n)
