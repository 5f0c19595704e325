"""`GraphComponent`: a pipeline, usable on its own or as a task of another pipeline."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from kubelab.pipelines.dsl import types
from kubelab.pipelines.dsl.base_component import (
    BaseComponent,
    describe_from_docstring,
    interface_from_function,
)
from kubelab.pipelines.dsl.one_of import OneOf
from kubelab.pipelines.dsl.pipeline_channel import PipelineChannel
from kubelab.pipelines.dsl.pipeline_config import PipelineConfig
from kubelab.pipelines.dsl.pipeline_context import Pipeline, sanitize_name
from kubelab.pipelines.dsl.pipeline_task import PipelineTask
from kubelab.pipelines.errors import KubelabError


class GraphComponent(BaseComponent):
    """The recorded DAG of a `@dsl.pipeline` function."""

    runs_in_container = False

    def __init__(
        self,
        func: Callable,
        *,
        name: str | None = None,
        description: str | None = None,
        pipeline_root: str | None = None,
        display_name: str | None = None,
        pipeline_config: PipelineConfig | None = None,
    ) -> None:
        # KFP cleans a given name up the same way ('Ray Test' -> 'ray-test').
        pipeline_name = sanitize_name(name or func.__name__)
        inputs, outputs = interface_from_function(func, pipeline_name)
        for spec in outputs.values():
            spec.passing = "value"
        if any(spec.passing == "path" for spec in inputs.values()):
            raise KubelabError(
                f"Pipeline '{pipeline_name}': InputPath/OutputPath are for components, "
                "not pipelines.",
                pipeline=pipeline_name,
            )
        doc_description = describe_from_docstring(func, inputs, outputs)
        super().__init__(pipeline_name, inputs, outputs, description or doc_description)
        self.python_func = func
        self.pipeline_root = pipeline_root
        self.display_name = display_name
        if pipeline_config is not None and not isinstance(pipeline_config, PipelineConfig):
            raise KubelabError(
                f"Pipeline '{pipeline_name}': pipeline_config must be a dsl.PipelineConfig, "
                f"got {type(pipeline_config).__name__}.",
                pipeline=pipeline_name,
            )
        self.pipeline_config = pipeline_config
        self.pipeline = Pipeline(pipeline_name)
        self.output_channels: dict[str, PipelineChannel] = {}
        args = {spec.name: PipelineChannel.from_spec(spec) for spec in inputs.values()}
        with self.pipeline:
            result = func(**args)
        self._collect_outputs(result)

    def _collect_outputs(self, result: Any) -> None:
        if isinstance(result, PipelineTask):
            result = result.output
        if result is None:
            if self.outputs:
                raise KubelabError(
                    f"Pipeline '{self.name}' declares outputs "
                    f"({', '.join(self.outputs)}) but returns nothing.",
                    pipeline=self.name,
                )
            return
        if isinstance(result, PipelineChannel):
            values = {"Output": result}
        elif isinstance(result, tuple) and hasattr(result, "_fields"):
            values = dict(zip(result._fields, result, strict=True))
        elif isinstance(result, dict) and all(isinstance(k, str) for k in result):
            values = dict(result)  # `return task.outputs`, as KFP allows
        else:
            raise KubelabError(
                f"Pipeline '{self.name}' must return a task output, a NamedTuple of task "
                f"outputs, a task's .outputs or None; got {type(result).__name__}.",
                pipeline=self.name,
            )
        for key, channel in values.items():
            if isinstance(channel, PipelineTask):
                channel = channel.output
            is_one_of = isinstance(channel, OneOf)
            if not isinstance(channel, PipelineChannel) or (channel.task is None and not is_one_of):
                raise KubelabError(
                    f"Pipeline '{self.name}': output '{key}' must be a task output, "
                    f"got {channel!r}.",
                    pipeline=self.name,
                    output=key,
                )
            producer = channel.branches if is_one_of else channel.task
            if producer.parent is not self.pipeline.root and not _is_collected(channel):
                raise KubelabError(
                    f"Pipeline '{self.name}': output '{key}' comes from task "
                    f"'{producer.name}' inside a control-flow block; pipeline outputs "
                    "must come from the top level (or dsl.Collected / dsl.OneOf).",
                    pipeline=self.name,
                    output=key,
                )
            declared = self.outputs.get(key)
            if declared is None:
                # No return annotation: the channel's own type declares the output.
                self.outputs[key] = types.IOSpec(
                    key,
                    parameter_type=channel.parameter_type or types.STRING,
                    artifact_class=channel.artifact_class,
                    is_list=channel.is_list,
                )
            elif declared.is_artifact != channel.is_artifact or (
                not declared.is_artifact
                and not types.parameter_types_compatible(
                    channel.parameter_type, declared.parameter_type
                )
            ):
                raise KubelabError(
                    f"Pipeline '{self.name}': output '{key}' is declared as "
                    f"{declared.type_name()} but returns {channel.describe()}.",
                    pipeline=self.name,
                    output=key,
                )
            self.output_channels[key] = channel
        missing = set(self.outputs) - set(self.output_channels)
        if missing:
            raise KubelabError(
                f"Pipeline '{self.name}' does not return declared output(s) "
                f"{', '.join(sorted(missing))}.",
                pipeline=self.name,
            )

    @property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.python_func)

    def type_hints(self) -> dict[str, Any]:
        return typing.get_type_hints(self.python_func, include_extras=True)


def _is_collected(channel: PipelineChannel) -> bool:
    from kubelab.pipelines.dsl.pipeline_channel import Collected

    return isinstance(channel, Collected)
