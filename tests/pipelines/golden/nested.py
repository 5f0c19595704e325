"""Golden: a pipeline used as a component inside another pipeline."""

from kubelab.pipelines import dsl


@dsl.component
def add(a: int, b: int) -> int:
    return a + b


@dsl.component
def double(x: int) -> int:
    return 2 * x


@dsl.pipeline
def add_and_double(a: int, b: int = 1) -> int:
    total = add(a=a, b=b)
    return double(x=total.output).output


@dsl.pipeline(name="golden-nested")
def pipeline(a: int = 1) -> int:
    first = add_and_double(a=a)
    second = add_and_double(a=first.output, b=3)
    return second.output


ARGUMENTS = {"a": 2}
# first = (2 + 1) * 2 = 6; second = (6 + 3) * 2 = 18
EXPECTED_OUTPUTS = {"Output": 18}
