"""KFP sample: exit loops conditions importer, compiled by kubelab and by the real kfp SDK."""
# ruff: noqa: UP006, UP035  -- ordinary KFP SDK code

from typing import List

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component
def gen(n: int) -> list:
    return list(range(n))


@dsl.component
def double(x: int) -> int:
    return 2 * x


@dsl.component
def total(xs: List[int]) -> int:
    return sum(xs)


@dsl.component
def train(d: Input[Dataset], m: Output[Model], metrics: Output[Metrics], lr: float = 0.1):
    pass


@dsl.component
def mk(out: Output[Dataset]):
    pass


@dsl.component
def agg(models: Input[List[Model]]) -> str:
    return ""


@dsl.component
def final(status: dsl.PipelineTaskFinalStatus, msg: str = "x"):
    pass


@dsl.pipeline(name="cmp-pipe")
def pipeline(n: int = 3, flag: str = "a"):
    exit_t = final()
    with dsl.ExitHandler(exit_t):
        g = gen(n=n)
        d = mk()
        with dsl.ParallelFor(g.output, parallelism=2) as item:
            dd = double(x=item)
            t = (
                train(d=d.outputs["out"])
                .set_cpu_limit("2")
                .set_memory_limit("1Gi")
                .set_accelerator_type("nvidia.com/gpu")
                .set_accelerator_limit(1)
                .set_env_variable("A", "b")
                .set_retry(3, backoff_duration="1m", backoff_factor=2.0)
                .set_caching_options(False)
                .set_display_name("Train it")
            )
        with dsl.ParallelFor([1, 2]) as it2:
            double(x=it2)
        tt = total(xs=dsl.Collected(dd.output))
        agg(models=dsl.Collected(t.outputs["m"]))
        with dsl.If(tt.output > 5):
            double(x=n)
        with dsl.Elif(flag == "b"):
            double(x=1)
        with dsl.Else():
            double(x=2)
        with dsl.Condition(n == 3):
            double(x=3)
    imp = dsl.importer(
        artifact_uri="gs://a/b", artifact_class=Dataset, reimport=True, metadata={"k": "v"}
    )
    train(d=imp.output)
