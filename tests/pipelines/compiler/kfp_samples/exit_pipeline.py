"""KFP sample: a pipeline as the exit task, reading the PipelineTaskFinalStatus,
compiled by kubelab and by kfp."""

from kubelab.pipelines import dsl


@dsl.component
def state_of(status: dict) -> str:
    return status["state"]


@dsl.component
def say(message: str):
    print(message)


@dsl.component
def fail():
    raise RuntimeError("failing on purpose")


@dsl.pipeline(name="notify")
def notify(status: dsl.PipelineTaskFinalStatus):
    with dsl.If(state_of(status=status).output == "FAILED"):
        say(message="notify task failure.")


@dsl.pipeline
def pipeline(message: str = "hi"):
    exit_task = notify()
    with dsl.ExitHandler(exit_task, name="guarded"):
        say(message=message)
        fail()
