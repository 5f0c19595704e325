"""Golden: dsl.ExitHandler with an exit task that reads PipelineTaskFinalStatus."""

from kubelab.pipelines import dsl


@dsl.component
def work(x: int) -> int:
    return x + 1


@dsl.component
def cleanup(status: dsl.PipelineTaskFinalStatus, tag: str) -> str:
    return f"{tag}:{status.state}"


@dsl.pipeline(name="golden-exit-handler")
def pipeline(x: int = 1) -> str:
    exit_task = cleanup(tag="done")
    with dsl.ExitHandler(exit_task, name="guarded"):
        first = work(x=x)
        work(x=first.output)
    return exit_task.output


ARGUMENTS = {"x": 1}
EXPECTED_OUTPUTS = {"Output": "done:SUCCEEDED"}
