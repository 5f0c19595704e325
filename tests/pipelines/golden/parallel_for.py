"""Golden: ParallelFor over a task output, a literal and a parameter; dsl.Collected."""
# ruff: noqa: B006, UP006, UP014, UP035  -- written as ordinary KFP SDK code

from typing import List, NamedTuple

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import Artifact, Input, Output


@dsl.component
def make_items(n: int) -> list:
    return list(range(1, n + 1))


@dsl.component
def square(x: int) -> int:
    return x * x


@dsl.component
def power(base: int, exponent: int) -> int:
    return base**exponent


@dsl.component
def total(values: List[int]) -> int:
    return sum(values)


@dsl.component
def write_number(x: int, out: Output[Artifact]):
    with open(out.path, "w") as f:
        f.write(str(x))


@dsl.component
def join_files(files: Input[List[Artifact]]) -> str:
    texts = []
    for item in files:
        with open(item.path) as f:
            texts.append(f.read())
    return ",".join(sorted(texts, key=int))


@dsl.component
def read_number(number: Input[Artifact]) -> int:
    with open(number.path) as f:
        return int(f.read())


@dsl.pipeline
def sum_files(files: Input[List[Artifact]]) -> int:
    """A sub-pipeline that fans out over a list of artifacts (artifactIterator)."""
    with dsl.ParallelFor(files, parallelism=2) as file:
        number = read_number(number=file)
    return total(values=dsl.Collected(number.output)).output


@dsl.pipeline(name="golden-parallel-for")
def pipeline(n: int = 3, xs: list = [1, 2]) -> NamedTuple(
    "Outputs",
    [
        ("from_task", int),
        ("from_literal", int),
        ("from_param", int),
        ("from_fields", int),
        ("from_files", int),
        ("joined", str),
    ],
):
    items = make_items(n=n)
    with dsl.ParallelFor(items.output, parallelism=2) as x:
        squared = square(x=x)
        written = write_number(x=x)
    with dsl.ParallelFor([10, 20], parallelism=1) as y:
        squared_literal = square(x=y)
    with dsl.ParallelFor(xs) as z:
        squared_param = square(x=z)
    with dsl.ParallelFor([{"base": 1, "exp": 2}, {"base": 3, "exp": 3}]) as cfg:
        powered = power(base=cfg.base, exponent=cfg.exp)
    from_task = total(values=dsl.Collected(squared.output))
    from_literal = total(values=dsl.Collected(squared_literal.output))
    from_param = total(values=dsl.Collected(squared_param.output))
    from_fields = total(values=dsl.Collected(powered.output))
    joined = join_files(files=dsl.Collected(written.outputs["out"]))
    from_files = sum_files(files=dsl.Collected(written.outputs["out"]))
    outputs = NamedTuple(
        "Outputs",
        [
            ("from_task", int),
            ("from_literal", int),
            ("from_param", int),
            ("from_fields", int),
            ("from_files", int),
            ("joined", str),
        ],
    )
    return outputs(
        from_task=from_task.output,
        from_literal=from_literal.output,
        from_param=from_param.output,
        from_fields=from_fields.output,
        from_files=from_files.output,
        joined=joined.output,
    )


ARGUMENTS = {"n": 4, "xs": [5, 6]}
# 1+4+9+16, 100+400, 25+36, 1**2 + 3**3, 1+2+3+4
EXPECTED_OUTPUTS = {
    "from_task": 30,
    "from_literal": 500,
    "from_param": 61,
    "from_fields": 28,
    "from_files": 10,
    "joined": "1,2,3,4",
}
