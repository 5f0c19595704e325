"""Bad pipelines fail with a KubelabError that names the task, input or field at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelab.pipelines import compiler, dsl
from kubelab.pipelines.dsl import Dataset, Input, Model, Output
from kubelab.pipelines.errors import KubelabError


@dsl.component
def make_number() -> int:
    return 1


@dsl.component
def use_int(x: int) -> int:
    return x


@dsl.component
def make_dataset(data: Output[Dataset]):
    pass


@dsl.component
def use_model(model: Input[Model]):
    pass


@dsl.component
def echo(text: str) -> str:
    return text


def test_cycle_is_reported_with_its_tasks(tmp_path: Path) -> None:
    @dsl.pipeline
    def cyclic():
        a = make_number()
        b = make_number()
        a.after(b)
        b.after(a)

    out = tmp_path / "out"
    out.mkdir()
    target = out / "pipeline.yaml"
    with pytest.raises(KubelabError, match=r"cycle.*make-number.*make-number-2") as info:
        compiler.Compiler().compile(cyclic, str(target))
    assert set(info.value.details["tasks"]) == {"make-number", "make-number-2"}
    assert list(out.iterdir()) == []  # nothing written, no temp file left behind


def test_cycle_through_data_and_after() -> None:
    @dsl.pipeline
    def cyclic():
        a = make_number()
        b = use_int(x=a.output)
        a.after(b)

    with pytest.raises(KubelabError, match="cycle"):
        compiler.build_pipeline_spec(cyclic)


def test_missing_required_input_names_task_and_input() -> None:
    with pytest.raises(KubelabError, match=r"'use_int' is missing required input 'x'") as info:

        @dsl.pipeline
        def missing():
            use_int()

    assert info.value.details == {"component": "use_int", "input": "x"}


def test_unknown_keyword_argument() -> None:
    with pytest.raises(KubelabError, match=r"unexpected keyword argument 'y'.*inputs are: x"):

        @dsl.pipeline
        def unknown():
            use_int(x=1, y=2)


def test_positional_arguments_are_rejected() -> None:
    with pytest.raises(KubelabError, match="keyword arguments"):

        @dsl.pipeline
        def positional():
            use_int(1)


def test_artifact_output_into_int_parameter_names_both_ends() -> None:
    with pytest.raises(KubelabError) as info:

        @dsl.pipeline
        def wrong():
            data = make_dataset()
            use_int(x=data.outputs["data"])

    message = info.value.message
    assert "output 'data' of task 'make-dataset'" in message
    assert "input 'x' of component 'use_int'" in message
    assert "artifact Dataset" in message and "parameter int" in message


def test_string_parameter_into_model_input() -> None:
    with pytest.raises(KubelabError, match=r"pipeline parameter 'name'.*'model' of component"):

        @dsl.pipeline
        def wrong(name: str):
            use_model(model=name)


def test_dataset_into_model_input() -> None:
    with pytest.raises(KubelabError, match=r"artifact Dataset.*expects artifact Model"):

        @dsl.pipeline
        def wrong():
            use_model(model=make_dataset().outputs["data"])


def test_str_output_into_int_input() -> None:
    with pytest.raises(KubelabError, match=r"parameter str.*expects parameter int"):

        @dsl.pipeline
        def wrong():
            use_int(x=echo(text="a").output)


def test_constant_of_wrong_type() -> None:
    with pytest.raises(KubelabError, match=r"input 'x' expects int but got str value 'one'"):

        @dsl.pipeline
        def wrong():
            use_int(x="one")


def test_loop_output_without_collected() -> None:
    @dsl.pipeline
    def wrong():
        with dsl.ParallelFor([1, 2]) as item:
            inner = use_int(x=item)
        use_int(x=inner.output)

    with pytest.raises(KubelabError, match=r"dsl.Collected"):
        compiler.build_pipeline_spec(wrong)


def test_conditional_output_used_outside() -> None:
    @dsl.pipeline
    def wrong(flag: str):
        with dsl.If(flag == "yes"):
            inner = make_number()
        use_int(x=inner.output)

    with pytest.raises(KubelabError, match=r"inside a dsl.If"):
        compiler.build_pipeline_spec(wrong)


def test_elif_without_if() -> None:
    with pytest.raises(KubelabError, match=r"must directly follow a dsl\.If"):

        @dsl.pipeline
        def wrong(flag: str):
            make_number()
            with dsl.Elif(flag == "a"):
                make_number()


def test_python_if_on_a_channel() -> None:
    with pytest.raises(KubelabError, match=r"use `with dsl\.If"):

        @dsl.pipeline
        def wrong(flag: str):
            if flag == "yes":
                make_number()


def test_final_status_outside_exit_handler() -> None:
    @dsl.component
    def report(status: dsl.PipelineTaskFinalStatus) -> str:
        return status.state

    @dsl.pipeline
    def wrong():
        report()

    with pytest.raises(KubelabError, match=r"input 'status'.*exit task"):
        compiler.build_pipeline_spec(wrong)


def test_unsupported_annotation_names_parameter() -> None:
    with pytest.raises(KubelabError, match=r"parameter 'x' has unsupported type") as info:

        @dsl.component
        def bad(x: complex):
            pass

    assert info.value.details == {"component": "bad", "parameter": "x"}


def test_invalid_resource_quantity() -> None:
    with pytest.raises(KubelabError, match=r"set_memory_limit\('lots'\)"):

        @dsl.pipeline
        def wrong():
            make_number().set_memory_limit("lots")


def test_pipeline_parameters_must_exist_and_match_type() -> None:
    @dsl.pipeline
    def p(n: int = 1):
        use_int(x=n)

    with pytest.raises(KubelabError, match=r"no parameter 'm'"):
        compiler.build_pipeline_spec(p, {"m": 1})
    with pytest.raises(KubelabError, match=r"'n' expects int"):
        compiler.build_pipeline_spec(p, {"n": "x"})


def test_pipeline_name_is_cleaned_up_as_kfp_does() -> None:
    @dsl.pipeline(name="Ray Integration Test")
    def p():
        make_number()

    assert compiler.build_pipeline_spec(p)["pipelineInfo"]["name"] == "ray-integration-test"


def test_invalid_pipeline_name() -> None:
    @dsl.pipeline(name="!!!")
    def p():
        make_number()

    with pytest.raises(KubelabError, match=r"Invalid pipeline name ''"):
        compiler.build_pipeline_spec(p)


def test_not_a_pipeline() -> None:
    with pytest.raises(KubelabError, match=r"@dsl\.pipeline"):
        compiler.build_pipeline_spec(lambda: None)


def test_bad_package_path(tmp_path: Path) -> None:
    @dsl.pipeline
    def p():
        make_number()

    with pytest.raises(KubelabError, match=r"\.yaml"):
        compiler.Compiler().compile(p, str(tmp_path / "out.txt"))


def test_dependency_into_exit_handler_or_condition_from_outside() -> None:
    @dsl.pipeline
    def into_exit_handler():
        with dsl.ExitHandler(make_number()):
            inner = make_number()
        make_number().after(inner)

    with pytest.raises(KubelabError, match=r"inside dsl\.ExitHandler block 'exit-handler-1'"):
        compiler.build_pipeline_spec(into_exit_handler)

    @dsl.pipeline
    def into_condition(flag: str):
        with dsl.If(flag == "a"):
            inner = make_number()
        make_number().after(inner)

    with pytest.raises(KubelabError, match=r"depends on task 'make-number', which is inside"):
        compiler.build_pipeline_spec(into_condition)


def test_one_of_needs_every_branch_and_an_else() -> None:
    with pytest.raises(KubelabError, match=r"every branch"):

        @dsl.pipeline
        def no_else(flag: str):
            with dsl.If(flag == "a"):
                a = echo(text="a")
            with dsl.Elif(flag == "b"):
                b = echo(text="b")
            echo(text=dsl.OneOf(a.output, b.output))

    with pytest.raises(KubelabError, match=r"same branch"):

        @dsl.pipeline
        def same_branch(flag: str):
            with dsl.If(flag == "a"):
                a = echo(text="a")
                b = echo(text="b")
            with dsl.Else():
                echo(text="c")
            echo(text=dsl.OneOf(a.output, b.output))

    with pytest.raises(KubelabError, match=r"share one type"):

        @dsl.pipeline
        def mixed(flag: str):
            with dsl.If(flag == "a"):
                a = echo(text="a")
            with dsl.Else():
                b = make_number()
            echo(text=dsl.OneOf(a.output, b.output))
