"""Golden: after, caching, retry, resources, env and display name on tasks."""
# ruff: noqa: UP014  -- written as ordinary KFP SDK code

from typing import NamedTuple

from kubelab.pipelines import dsl


@dsl.component
def step(x: int) -> int:
    return x + 1


@dsl.component
def read_env() -> str:
    import os

    return os.environ.get("GREETING", "missing")


@dsl.pipeline(name="golden-task-methods")
def pipeline(x: int = 1) -> NamedTuple("Outputs", [("result", int), ("env", str)]):
    first = (
        step(x=x)
        .set_display_name("first step")
        .set_caching_options(False)
        .set_retry(
            num_retries=2, backoff_duration="1s", backoff_factor=2.0, backoff_max_duration="10s"
        )
    )
    second = (
        step(x=first.output)
        .set_cpu_request("100m")
        .set_cpu_limit("1")
        .set_memory_request("64Mi")
        .set_memory_limit("256Mi")
    )
    env = read_env().set_env_variable("GREETING", "hello").after(first)
    outputs = NamedTuple("Outputs", [("result", int), ("env", str)])
    return outputs(result=second.output, env=env.output)


ARGUMENTS = {"x": 1}
EXPECTED_OUTPUTS = {"result": 3, "env": "hello"}
