"""Golden: container components (plain `sh`, so they run without Docker)."""
# ruff: noqa: UP014  -- written as ordinary KFP SDK code

from typing import NamedTuple

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import Dataset, Output, OutputPath


@dsl.container_component
def greet(name: str, greeting: OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine:3.20",
        command=["sh", "-c", 'mkdir -p "$(dirname "$1")" && printf "hello %s" "$0" > "$1"'],
        args=[name, greeting],
    )


@dsl.container_component
def write_file(text: str, out: Output[Dataset]):
    return dsl.ContainerSpec(
        image="alpine:3.20",
        command=["sh", "-c", 'mkdir -p "$(dirname "$1")" && printf "%s file" "$0" > "$1"'],
        args=[text, out.path],
    )


@dsl.component
def shout(text: str) -> str:
    return text.upper()


@dsl.pipeline(name="golden-container")
def pipeline(name: str = "world") -> NamedTuple(
    "Outputs", [("greeting", str), ("loud", str), ("file", Dataset)]
):
    greeting = greet(name=name)
    loud = shout(text=greeting.outputs["greeting"])
    written = write_file(text=name)
    outputs = NamedTuple("Outputs", [("greeting", str), ("loud", str), ("file", Dataset)])
    return outputs(
        greeting=greeting.outputs["greeting"], loud=loud.output, file=written.outputs["out"]
    )


ARGUMENTS = {"name": "kubelab"}
EXPECTED_OUTPUTS = {
    "greeting": "hello kubelab",
    "loud": "HELLO KUBELAB",
    "file.text": "kubelab file",
}
