"""KFP sample: task overrides, compiled by kubelab and by the real kfp SDK."""

from kubelab.pipelines import dsl


@dsl.component
def a(x: int = 1) -> int:
    return x


@dsl.pipeline
def pipeline():
    t = a()
    a(x=t.output).ignore_upstream_failure().set_container_image(
        "python:3.12"
    ).add_node_selector_constraint("nvidia.com/gpu")
