"""KFP sample: channels formatted into strings, and task settings given run-time values,
compiled by kubelab and by kfp."""
# ruff: noqa: UP031  -- ordinary KFP SDK code

from kubelab.pipelines import dsl


@dsl.component
def say(text: str) -> str:
    return text


@dsl.component
def limits() -> str:
    return "500m"


@dsl.pipeline
def pipeline(name: str = "world", memory: str = "1Gi", gpu: str = "nvidia.com/gpu"):
    first = say(text=f"hello {name}")
    second = say(text=f"{first.output}, again, {name}")
    cpu = limits()
    second.set_cpu_limit(cpu.output).set_memory_limit(memory)
    second.set_accelerator_type(gpu).set_accelerator_limit("1")
    say(text="%s!" % first.output).set_cpu_request("250m").set_memory_request("512Mi")
    with dsl.ParallelFor(["a", "b"]) as letter:
        say(text=f"{letter}-{name}")
