"""The DSL surface itself: types, tasks and their settings, groups, placeholders."""

from __future__ import annotations

import sys
from typing import Optional

import pytest

from kubelab.pipelines import compiler, dsl
from kubelab.pipelines.dsl import Dataset, Input, Output, OutputPath
from kubelab.pipelines.dsl.artifact_types import class_for_schema_title
from kubelab.pipelines.errors import KubelabError


@dsl.component
def step(x: int = 0) -> int:
    return x + 1


@dsl.component
def two_outputs(out_a: OutputPath(str), out_b: OutputPath(str)):
    pass


def test_class_for_schema_title() -> None:
    assert class_for_schema_title("system.Dataset") is dsl.Dataset
    assert class_for_schema_title("system.ClassificationMetrics") is dsl.ClassificationMetrics
    assert class_for_schema_title("system.HTML") is dsl.HTML
    assert class_for_schema_title("google.VertexModel") is dsl.Artifact


def test_metrics_artifacts() -> None:
    metrics = dsl.Metrics()
    metrics.log_metric("accuracy", 0.9)
    assert metrics.metadata == {"accuracy": 0.9}
    cm = dsl.ClassificationMetrics()
    cm.set_confusion_matrix_categories(["x", "y"])
    cm.log_confusion_matrix_cell("x", "y", 5)
    cm.log_confusion_matrix_row("y", [1, 2])
    assert cm.metadata["confusionMatrix"]["rows"] == [{"row": [0, 5]}, {"row": [1, 2]}]
    with pytest.raises(ValueError, match="same length"):
        cm.log_roc_curve([0.0], [0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="unknown category 'z'"):
        cm.log_confusion_matrix_cell("z", "x", 1)


def test_task_methods_chain_and_validate() -> None:
    seen = {}

    @dsl.pipeline
    def p():
        task = step(x=1)
        for method, args in [
            ("set_caching_options", (False,)),
            ("set_retry", (3,)),
            ("set_cpu_limit", ("500m",)),
            ("set_cpu_request", ("0.25",)),
            ("set_memory_limit", ("1Gi",)),
            ("set_memory_request", ("512M",)),
            ("set_accelerator_type", ("nvidia.com/gpu",)),
            ("set_accelerator_limit", (1,)),
            ("set_env_variable", ("A", "1")),
            ("set_display_name", ("Step",)),
            ("after", (step(),)),
        ]:
            assert getattr(task, method)(*args) is task, method
        seen["task"] = task
        with pytest.raises(KubelabError, match="non-negative int"):
            task.set_retry(-1)
        with pytest.raises(KubelabError, match="duration like"):
            task.set_retry(1, backoff_duration="soon")
        with pytest.raises(KubelabError, match="positive integer"):
            task.set_accelerator_limit(0)
        with pytest.raises(KubelabError, match="not a valid Kubernetes quantity"):
            task.set_cpu_limit("two")
        with pytest.raises(KubelabError, match="environment variable name"):
            task.set_env_variable("1 bad", "x")
        with pytest.raises(KubelabError, match="cannot run after itself"):
            task.after(task)

    task = seen["task"]
    assert task.retry_policy == {
        "maxRetryCount": 3,
        "backoffDuration": "0s",
        "backoffFactor": 2.0,
        "backoffMaxDuration": "3600s",
    }
    ir = compiler.build_pipeline_spec(p)
    resources = ir["deploymentSpec"]["executors"]["exec-step"]["container"]["resources"]
    assert resources == {
        "resourceCpuLimit": "500m",
        "resourceCpuRequest": "0.25",
        "resourceMemoryLimit": "1Gi",
        "resourceMemoryRequest": "512M",
        "accelerator": {
            "resourceType": "nvidia.com/gpu",
            "resourceCount": "1",
            "type": "nvidia.com/gpu",
            "count": "1",
        },
        "cpuLimit": 0.5,
        "cpuRequest": 0.25,
        "memoryLimit": 1.073741824,
        "memoryRequest": 0.512,
    }


def test_retry_durations_are_capped_like_kfp() -> None:
    @dsl.pipeline
    def p():
        step().set_retry(1, backoff_duration="2m", backoff_max_duration="2h")

    policy = compiler.build_pipeline_spec(p)["root"]["dag"]["tasks"]["step"]["retryPolicy"]
    assert policy["backoffDuration"] == "120s" and policy["backoffMaxDuration"] == "3600s"


def test_resources_not_allowed_on_sub_pipelines() -> None:
    @dsl.pipeline
    def inner():
        step()

    with pytest.raises(KubelabError, match=r"set_cpu_limit\(\) only applies"):

        @dsl.pipeline
        def outer():
            inner().set_cpu_limit("1")


def test_unknown_output_name() -> None:
    with pytest.raises(KubelabError, match=r"Task 'two-outputs' has no output 'out_c'.*out_a"):

        @dsl.pipeline
        def p():
            step(x=two_outputs().outputs["out_c"])


def test_output_property_needs_a_single_output() -> None:
    with pytest.raises(KubelabError, match=r"has 2 outputs \(out_a, out_b\)"):

        @dsl.pipeline
        def p():
            step(x=two_outputs().output)


def test_calling_outside_a_pipeline_without_local_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if kubelab.pipelines.local were not installed.
    monkeypatch.setitem(sys.modules, "kubelab.pipelines.local", None)
    with pytest.raises(KubelabError, match=r"local\.init\(\)") as info:
        step(x=1)
    assert info.value.details == {"component": "step"}


def test_calling_outside_a_pipeline_before_init() -> None:
    from kubelab.pipelines import local

    if local.is_initialized():
        pytest.skip("another test initialised the local engine in this process")
    with pytest.raises(KubelabError, match=r"local\.init"):
        step(x=1)


def test_groups_need_a_pipeline() -> None:
    with pytest.raises(KubelabError, match=r"inside a @dsl\.pipeline"):
        dsl.ParallelFor([1, 2])
    with pytest.raises(KubelabError, match=r"inside a @dsl\.pipeline"):
        dsl.importer(artifact_uri="/tmp/x", artifact_class=Dataset)


def test_parallel_for_validation() -> None:
    with pytest.raises(KubelabError, match="parallelism"):

        @dsl.pipeline
        def bad_parallelism():
            with dsl.ParallelFor([1], parallelism=-1):
                pass

    with pytest.raises(KubelabError, match="empty list"):

        @dsl.pipeline
        def empty():
            with dsl.ParallelFor([]):
                pass

    with pytest.raises(KubelabError, match="list parameter or a list of artifacts"):

        @dsl.pipeline
        def single_artifact(data: Input[Dataset]):
            with dsl.ParallelFor(data):
                pass

    with pytest.raises(KubelabError, match="needs a list"):

        @dsl.pipeline
        def not_a_list(n: int):
            with dsl.ParallelFor(n):
                pass


def test_loop_over_dicts_and_nested_groups() -> None:
    @dsl.pipeline
    def p(flag: str = "go"):
        with dsl.ParallelFor([{"a": 1}, {"a": 2}]) as item, dsl.If(flag == "go"):
            step(x=3)
        del item

    ir = compiler.build_pipeline_spec(p)
    loop = ir["root"]["dag"]["tasks"]["for-loop-2"]
    assert loop["parameterIterator"]["itemInput"] == "pipelinechannel--loop-item-param-1"
    loop_comp = ir["components"]["comp-for-loop-2"]
    assert loop_comp["inputDefinitions"]["parameters"]["pipelinechannel--loop-item-param-1"] == {
        "parameterType": "STRUCT"
    }
    condition = loop_comp["dag"]["tasks"]["condition-3"]
    assert condition["inputs"]["parameters"]["pipelinechannel--flag"] == {
        "componentInputParameter": "pipelinechannel--flag"
    }


def test_exit_handler_validation() -> None:
    with pytest.raises(KubelabError, match="only be used at the top level"):

        @dsl.pipeline
        def nested():
            with dsl.ParallelFor([1, 2]), dsl.ExitHandler(step(x=1)):
                step()

    with pytest.raises(KubelabError, match="needs a task"):

        @dsl.pipeline
        def p():
            with dsl.ExitHandler("cleanup"):
                step()

    with pytest.raises(KubelabError, match="must not depend on other tasks"):

        @dsl.pipeline
        def q():
            first = step()
            with dsl.ExitHandler(step(x=first.output)):
                step()


def test_final_status_cannot_be_passed() -> None:
    @dsl.component
    def report(status: dsl.PipelineTaskFinalStatus):
        pass

    with pytest.raises(KubelabError, match=r"filled in by dsl\.ExitHandler"):

        @dsl.pipeline
        def p():
            report(status="x")


def test_container_component_placeholders() -> None:
    @dsl.container_component
    def tool(
        name: str,
        data: Input[Dataset],
        result: Output[Dataset],
        verbose: Optional[str] = None,  # noqa: UP045 - KFP style
    ):
        return dsl.ContainerSpec(
            image="busybox",
            command=["tool"],
            args=[
                f"--name={name}",
                dsl.ConcatPlaceholder(["--in=", data.path]),
                dsl.IfPresentPlaceholder(input_name="verbose", then=["-v", verbose]),
                result.uri,
                7,
            ],
        )

    container = tool.executor_spec()["container"]
    assert container["args"] == [
        "--name={{$.inputs.parameters['name']}}",
        '{"Concat": ["--in=", "{{$.inputs.artifacts[\'data\'].path}}"]}',
        '{"IfPresent": {"InputName": "verbose", "Then": ["-v", '
        "\"{{$.inputs.parameters['verbose']}}\"]}}",
        "{{$.outputs.artifacts['result'].uri}}",
        "7",
    ]


def test_container_component_must_return_container_spec() -> None:
    with pytest.raises(KubelabError, match=r"must return dsl\.ContainerSpec"):

        @dsl.container_component
        def bad(x: str):
            return ["echo", x]


def test_future_annotations_and_pep604_types(tmp_path) -> None:
    source = (
        "from __future__ import annotations\n"
        "from kubelab.pipelines import dsl\n"
        "from kubelab.pipelines.dsl import Input, Dataset\n\n"
        "@dsl.component\n"
        "def f(a: int | None = None, d: Input[Dataset] | None = None) -> list[int]:\n"
        "    return [a or 0]\n\n"
        "@dsl.pipeline\n"
        "def p(a: int = 2) -> list:\n"
        "    return f(a=a).output\n"
    )
    path = tmp_path / "future.py"
    path.write_text(source)
    pipeline = compiler.load_pipeline_file(str(path))
    ir = compiler.build_pipeline_spec(pipeline)
    comp = ir["components"]["comp-f"]
    assert comp["inputDefinitions"]["parameters"]["a"] == {
        "isOptional": True,
        "parameterType": "NUMBER_INTEGER",
    }
    assert comp["inputDefinitions"]["artifacts"]["d"]["isOptional"] is True
    assert comp["outputDefinitions"]["parameters"]["Output"] == {"parameterType": "LIST"}


def test_formatted_channel_becomes_an_extra_input() -> None:
    @dsl.component
    def say(text: str) -> str:
        return text

    @dsl.pipeline
    def p(name: str):
        first = say(text=f"hello {name}")
        say(text=f"{first.output}, again")

    tasks = compiler.build_pipeline_spec(p)["root"]["dag"]["tasks"]
    assert tasks["say"]["inputs"]["parameters"] == {
        "text": {
            "runtimeValue": {"constant": "hello {{$.inputs.parameters['pipelinechannel--name']}}"}
        },
        "pipelinechannel--name": {"componentInputParameter": "name"},
    }
    assert tasks["say-2"]["dependentTasks"] == ["say"]
    assert tasks["say-2"]["inputs"]["parameters"]["pipelinechannel--say-Output"] == {
        "taskOutputParameter": {"producerTask": "say", "outputParameterKey": "Output"}
    }


def test_formatted_artifact_is_rejected() -> None:
    @dsl.component
    def make(out: Output[Dataset]):
        pass

    @dsl.component
    def say(text: str) -> str:
        return text

    with pytest.raises(KubelabError, match="only parameters can be formatted"):

        @dsl.pipeline
        def p():
            say(text=f"see {make().outputs['out']}")


def test_pipeline_output_from_control_flow_is_rejected() -> None:
    with pytest.raises(KubelabError, match="inside a control-flow block"):

        @dsl.pipeline
        def p(flag: str) -> int:
            with dsl.If(flag == "a"):
                inner = step()
            return inner.output


def test_ignore_upstream_failure_and_image_override() -> None:
    @dsl.pipeline
    def p():
        first = step()
        step(x=first.output).ignore_upstream_failure().set_container_image("python:3.12-slim")

    ir = compiler.build_pipeline_spec(p)
    task = ir["root"]["dag"]["tasks"]["step-2"]
    assert task["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert task["dependentTasks"] == ["step"]
    executors = ir["deploymentSpec"]["executors"]
    assert executors["exec-step-2"]["container"]["image"] == "python:3.12-slim"
    assert executors["exec-step"]["container"]["image"] == "python:3.11"

    @dsl.component
    def needs(x: int) -> int:
        return x

    with pytest.raises(KubelabError, match=r"input 'x' comes from task 'step' and has no default"):

        @dsl.pipeline
        def q():
            needs(x=step().output).ignore_upstream_failure()


def test_pipelines_defined_in_threads_do_not_mix() -> None:
    import threading

    barrier = threading.Barrier(4)
    results: dict[int, list[str]] = {}

    def define(index: int) -> None:
        def body(x: int = 0):
            barrier.wait(timeout=10)  # all four pipeline bodies run at the same time
            for _ in range(index + 1):
                step(x=x)

        body.__name__ = f"threaded_{index}"
        graph = dsl.pipeline(body)
        results[index] = sorted(graph.pipeline.tasks)

    threads = [threading.Thread(target=define, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert {i: len(names) for i, names in results.items()} == {0: 1, 1: 2, 2: 3, 3: 4}


def test_kubernetes_settings_validation() -> None:
    from kubelab.pipelines.dsl import kubernetes

    @dsl.pipeline
    def p():
        task = step()
        assert kubernetes.add_node_selector(task, "gpu", "a100") is task
        with pytest.raises(KubelabError, match="policy must be one of"):
            kubernetes.set_image_pull_policy(task, "Sometimes")
        with pytest.raises(KubelabError, match="operator must be one of"):
            kubernetes.add_toleration(task, key="k", operator="Like")
        with pytest.raises(KubelabError, match="secret_name must be a non-empty string"):
            kubernetes.use_secret_as_env(task, secret_name="", secret_key_to_env={})

    with pytest.raises(KubelabError, match="takes a task"):
        kubernetes.add_pod_label("not a task", "a", "b")
    _spec, platform = compiler.build_specs(p)
    assert platform == {
        "platforms": {
            "kubernetes": {
                "deploymentSpec": {
                    "executors": {"exec-step": {"nodeSelector": {"labels": {"gpu": "a100"}}}}
                }
            }
        }
    }
    assert compiler.build_specs(step)[1] is None
