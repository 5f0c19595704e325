"""Golden: a pipeline returning a task output as its single output."""

from kubelab.pipelines import dsl


@dsl.component
def greet(name: str) -> str:
    return f"Hello, {name}!"


@dsl.pipeline(name="golden-pipeline-outputs")
def pipeline(name: str = "world") -> str:
    return greet(name=name).output


ARGUMENTS = {"name": "kubelab"}
EXPECTED_OUTPUTS = {"Output": "Hello, kubelab!"}
