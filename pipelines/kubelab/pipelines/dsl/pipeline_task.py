"""`PipelineTask`: one call of a component inside a pipeline, and its settings.

Arguments are checked here, when the task is created, so mistakes point at the
line of the pipeline function that made them.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.dsl import types
from kubelab.pipelines.dsl.pipeline_channel import (
    CHANNEL_PATTERN,
    CHANNEL_PATTERN_START,
    Collected,
    LoopItem,
    PipelineChannel,
)
from kubelab.pipelines.errors import KubelabError

if TYPE_CHECKING:
    from kubelab.pipelines.dsl.base_component import BaseComponent
    from kubelab.pipelines.dsl.tasks_group import ExitHandler, TasksGroup

_CPU = re.compile(r"^([0-9]*[.])?[0-9]+m?$")
# The task inputs KFP adds for run-time resource and image settings.
RESOURCE_INPUTS = {
    "resourceCpuLimit": "cpu_limit",
    "resourceCpuRequest": "cpu_request",
    "resourceMemoryLimit": "memory_limit",
    "resourceMemoryRequest": "memory_request",
    "resourceType": "accelerator_type",
    "resourceCount": "accelerator_count",
}
IMAGE_INPUT = "base_image"
_MEMORY = re.compile(r"^([0-9]*[.])?[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki|k)?$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def duration_seconds(value: str | int | float, what: str) -> int:
    """'30s', '5m', '1h', or a number of seconds → whole seconds (KFP's rule)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value and value[-1] in _DURATION_UNITS:
        try:
            return int(float(value[:-1]) * _DURATION_UNITS[value[-1]])
        except ValueError:
            pass
    raise KubelabError(
        f"set_retry: {what} must be a duration like '30s', '5m' or '1h', got {value!r}.",
        parameter=what,
    )


class _Outputs(dict):
    """`task.outputs`: a dict whose missing keys name the task and its outputs."""

    def __init__(self, task_name: str) -> None:
        super().__init__()
        self.task_name = task_name

    def __or__(self, other: dict) -> _Outputs:  # type: ignore[override]
        merged = _Outputs(self.task_name)
        merged.update(self)
        merged.update(other)
        return merged

    def __missing__(self, key: str) -> PipelineChannel:
        known = ", ".join(sorted(self)) or "none"
        raise KubelabError(
            f"Task '{self.task_name}' has no output '{key}' (its outputs are: {known}).",
            task=self.task_name,
            output=key,
        )


def formatted_channels(value: Any, where: str) -> list[PipelineChannel]:
    """Channels whose str() was formatted into a constant (f-strings, %, .format)."""
    from kubelab.pipelines.dsl.pipeline_context import Pipeline

    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if CHANNEL_PATTERN_START not in text:
        return []
    pipeline = Pipeline.get_default_pipeline()
    found: list[PipelineChannel] = []
    for pattern in CHANNEL_PATTERN.findall(text):
        channel = pipeline.formatted.get(pattern) if pipeline else None
        if channel is None:
            raise KubelabError(
                f"The constant of {where} embeds {pattern}, a pipeline channel that is not "
                "part of this pipeline.",
            )
        if channel.is_artifact:
            raise KubelabError(
                f"The constant of {where} formats {channel.describe()} into a string; only "
                "parameters can be formatted (pass the artifact itself).",
            )
        if not any(channel is seen for seen in found):
            found.append(channel)
    return found


class PipelineTask:
    """A component invocation in a pipeline; methods return the task for chaining."""

    def __init__(self, component: BaseComponent, arguments: dict[str, Any]) -> None:
        from kubelab.pipelines.dsl.pipeline_context import Pipeline

        pipeline = Pipeline.get_default_pipeline()
        assert pipeline is not None, "PipelineTask is created inside a pipeline context"
        self.component = component
        self.parent: TasksGroup | None = None
        self.exit_handler: ExitHandler | None = None
        self.display_name: str | None = None
        self.enable_caching = True
        self.retry_policy: dict[str, Any] | None = None
        # Quantities are strings, or channels when set from a run-time value.
        self.resources: dict[str, str | PipelineChannel] = {}
        self.accelerator: dict[str, str | PipelineChannel] = {}
        self.env: dict[str, str] = {}
        self.explicit_dependencies: list[PipelineTask] = []
        self.ignore_upstream_failure_tag = False
        self.container_image: str | PipelineChannel | None = None
        self.cache_key: str | None = None
        # Kubernetes-only settings, emitted in the PlatformSpec document; channels in
        # it (a secret name from a parameter...) are listed in platform_channels.
        self.platform_config: dict[str, Any] = {}
        self.platform_channels: list[PipelineChannel] = []
        # Channels formatted into string arguments (f-strings), in order of use.
        self.string_channels: list[PipelineChannel] = []
        self.arguments = self._check_arguments(arguments)
        self.name = pipeline.add_task(self, component.name)
        self.outputs: dict[str, PipelineChannel] = _Outputs(self.name) | {
            spec.name: PipelineChannel.from_spec(spec, task=self)
            for spec in component.outputs.values()
        }

    # ------------------------------------------------------------------ wiring
    def _check_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        comp = self.component
        inputs = comp.inputs
        for key in arguments:
            if key not in inputs:
                known = ", ".join(sorted(inputs)) or "none"
                raise KubelabError(
                    f"Component '{comp.name}' got an unexpected keyword argument '{key}' "
                    f"(its inputs are: {known}).",
                    component=comp.name,
                    input=key,
                )
        checked: dict[str, Any] = {}
        for name, spec in inputs.items():
            if name not in arguments or arguments[name] is None:
                if spec.required:
                    raise KubelabError(
                        f"Task for component '{comp.name}' is missing required input "
                        f"'{name}' ({spec.type_name()}).",
                        component=comp.name,
                        input=name,
                    )
                continue
            value = arguments[name]
            if spec.parameter_type == types.TASK_FINAL_STATUS and not (
                isinstance(value, PipelineChannel)
                and value.parameter_type == types.TASK_FINAL_STATUS
            ):
                raise KubelabError(
                    f"Component '{comp.name}': input '{name}' is a PipelineTaskFinalStatus, "
                    "filled in by dsl.ExitHandler; do not pass it.",
                    component=comp.name,
                    input=name,
                )
            if isinstance(value, PipelineTask):
                value = value.output
            if isinstance(value, PipelineChannel):
                self._check_channel(spec, value)
            elif spec.is_artifact:
                raise KubelabError(
                    f"Component '{comp.name}': input '{name}' expects {spec.type_name()} "
                    f"from a task output or importer, got constant {value!r}.",
                    component=comp.name,
                    input=name,
                )
            else:
                assert spec.parameter_type is not None
                types.check_constant(comp.name, name, spec.parameter_type, value)
                value = types.normalise_constant(spec.parameter_type, value)
                for channel in formatted_channels(value, f"input '{name}' of '{comp.name}'"):
                    if not any(channel is seen for seen in self.string_channels):
                        self.string_channels.append(channel)
            checked[name] = value
        return checked

    def _check_channel(self, spec: types.IOSpec, channel: PipelineChannel) -> None:
        comp = self.component
        ok: bool
        if spec.is_artifact != channel.is_artifact:
            ok = False
        elif spec.is_artifact:
            assert spec.artifact_class is not None and channel.artifact_class is not None
            generic = "system.Artifact"
            ok = spec.is_list == channel.is_list and (
                generic in (spec.artifact_class.schema_title, channel.artifact_class.schema_title)
                or spec.artifact_class.schema_title == channel.artifact_class.schema_title
            )
        elif isinstance(channel, LoopItem) and channel.parameter_type == types.STRING:
            ok = True  # an untyped list's item: KFP types it STRING and lets it pass
        else:
            ok = types.parameter_types_compatible(channel.parameter_type, spec.parameter_type)
        if not ok:
            hint = " (wrap it in dsl.Collected to pass all loop values)" if spec.is_list else ""
            if isinstance(channel, Collected):
                hint = " (dsl.Collected gives a list)"
            raise KubelabError(
                f"Type mismatch: {channel.describe()} cannot be passed to input "
                f"'{spec.name}' of component '{comp.name}', which expects "
                f"{spec.type_name()}{hint}.",
                component=comp.name,
                input=spec.name,
                source=channel.full_name,
            )

    @property
    def output(self) -> PipelineChannel:
        """The only output of the task (KFP's `.output`)."""
        if len(self.outputs) != 1:
            names = ", ".join(sorted(self.outputs)) or "none"
            raise KubelabError(
                f"Task '{self.name}' has {len(self.outputs)} outputs ({names}); "
                "use .outputs['<name>'] instead of .output.",
                task=self.name,
            )
        return next(iter(self.outputs.values()))

    def upstream_tasks(self) -> list[PipelineTask]:
        """Tasks this one reads from (arguments, f-strings) or was told to run after."""
        found: list[PipelineTask] = list(self.explicit_dependencies)
        argument_channels = [v for v in self.arguments.values() if isinstance(v, PipelineChannel)]
        for value in [*argument_channels, *self.string_channels]:
            if value.task is not None and value.task not in found:
                found.append(value.task)
        return found

    def setting_channels(self) -> list[PipelineChannel]:
        """Run-time values of the task's settings: resources, image."""
        values = [*self.resources.values(), *self.accelerator.values(), self.container_image]
        return [v for v in values if isinstance(v, PipelineChannel)]

    def channels(self) -> list[PipelineChannel]:
        """Every channel the task reads, so that enclosing sub-DAGs pass it in."""
        found = [v for v in self.arguments.values() if isinstance(v, PipelineChannel)]
        for channel in [*self.string_channels, *self.setting_channels(), *self.platform_channels]:
            if not any(channel is seen for seen in found):
                found.append(channel)
        return found

    # --------------------------------------------------------------- settings
    def after(self, *tasks: PipelineTask) -> PipelineTask:
        """Run after `tasks` even without a data dependency."""
        for task in tasks:
            if not isinstance(task, PipelineTask):
                raise KubelabError(
                    f"Task '{self.name}': .after() takes tasks, got {type(task).__name__}.",
                    task=self.name,
                )
            if task is self:
                raise KubelabError(f"Task '{self.name}' cannot run after itself.", task=self.name)
            if task not in self.explicit_dependencies:
                self.explicit_dependencies.append(task)
        return self

    def set_caching_options(
        self, enable_caching: bool, cache_key: str | None = None
    ) -> PipelineTask:
        self.enable_caching = bool(enable_caching)
        self.cache_key = cache_key or None
        return self

    def set_display_name(self, name: str) -> PipelineTask:
        if not isinstance(name, str) or not name:
            raise KubelabError(
                f"Task '{self.name}': display name must be a non-empty string.", task=self.name
            )
        self.display_name = name
        return self

    def set_retry(
        self,
        num_retries: int,
        backoff_duration: str | None = None,
        backoff_factor: float | None = None,
        backoff_max_duration: str | None = None,
    ) -> PipelineTask:
        if isinstance(num_retries, bool) or not isinstance(num_retries, int) or num_retries < 0:
            raise KubelabError(
                f"Task '{self.name}': set_retry num_retries must be a non-negative int, "
                f"got {num_retries!r}.",
                task=self.name,
                parameter="num_retries",
            )
        policy: dict[str, Any] = {
            "maxRetryCount": num_retries,
            "backoffDuration": f"{duration_seconds(backoff_duration or '0s', 'backoff_duration')}s",
            "backoffMaxDuration": (
                f"{min(duration_seconds(backoff_max_duration or '3600s', 'backoff_max_duration'), 3600)}s"
            ),
        }
        # KFP's default factor is 2.0 and it writes it out explicitly.
        factor = 2.0 if backoff_factor is None else backoff_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 0:
            raise KubelabError(
                f"Task '{self.name}': backoff_factor must be a non-negative number.",
                task=self.name,
                parameter="backoff_factor",
            )
        policy["backoffFactor"] = float(factor)
        self.retry_policy = policy
        return self

    def _require_container(self, method: str) -> None:
        if not self.component.runs_in_container:
            raise KubelabError(
                f"Task '{self.name}': {method}() only applies to container or Python "
                f"component tasks, not to {type(self.component).__name__}.",
                task=self.name,
            )

    def _runtime_setting(self, method: str, value: Any) -> PipelineChannel | None:
        """The channel behind a setting given a run-time value (KFP allows parameters)."""
        if isinstance(value, PipelineTask):
            value = value.output
        if not isinstance(value, PipelineChannel):
            return None
        if value.is_artifact or value.parameter_type not in (None, types.STRING):
            raise KubelabError(
                f"Task '{self.name}': {method}() takes a str or a str parameter, "
                f"got {value.describe()}.",
                task=self.name,
                parameter=method,
            )
        return value

    def _quantity(
        self, method: str, key: str, value: str | int | float, pattern: re.Pattern
    ) -> PipelineTask:
        self._require_container(method)
        channel = self._runtime_setting(method, value)
        if channel is not None:
            self.resources[key] = channel
            return self
        text = str(value)
        if isinstance(value, bool) or not pattern.match(text):
            raise KubelabError(
                f"Task '{self.name}': {method}({value!r}) is not a valid Kubernetes quantity.",
                task=self.name,
                parameter=method,
            )
        self.resources[key] = text
        return self

    def set_cpu_limit(self, cpu: str) -> PipelineTask:
        return self._quantity("set_cpu_limit", "resourceCpuLimit", cpu, _CPU)

    def set_cpu_request(self, cpu: str) -> PipelineTask:
        return self._quantity("set_cpu_request", "resourceCpuRequest", cpu, _CPU)

    def set_memory_limit(self, memory: str) -> PipelineTask:
        return self._quantity("set_memory_limit", "resourceMemoryLimit", memory, _MEMORY)

    def set_memory_request(self, memory: str) -> PipelineTask:
        return self._quantity("set_memory_request", "resourceMemoryRequest", memory, _MEMORY)

    def set_accelerator_type(self, accelerator: str) -> PipelineTask:
        self._require_container("set_accelerator_type")
        channel = self._runtime_setting("set_accelerator_type", accelerator)
        if channel is not None:
            self.accelerator["resourceType"] = channel
            self.accelerator.setdefault("resourceCount", "1")
            return self
        if not isinstance(accelerator, str) or not accelerator:
            raise KubelabError(
                f"Task '{self.name}': accelerator type must be a non-empty string.",
                task=self.name,
            )
        self.accelerator["resourceType"] = accelerator
        self.accelerator.setdefault("resourceCount", "1")
        return self

    def set_accelerator_limit(self, limit: int | str) -> PipelineTask:
        self._require_container("set_accelerator_limit")
        channel = self._runtime_setting("set_accelerator_limit", limit)
        if channel is not None:
            self.accelerator["resourceCount"] = channel
            return self
        text = str(limit)
        if isinstance(limit, bool) or not text.isdigit() or int(text) < 1:
            raise KubelabError(
                f"Task '{self.name}': accelerator limit must be a positive integer, got {limit!r}.",
                task=self.name,
            )
        self.accelerator["resourceCount"] = str(int(text))
        return self

    def add_node_selector_constraint(self, accelerator: str) -> PipelineTask:
        """Deprecated KFP spelling of set_accelerator_type."""
        return self.set_accelerator_type(accelerator)

    def set_container_image(self, name: str) -> PipelineTask:
        """Run this task in `name` instead of the component's image."""
        self._require_container("set_container_image")
        channel = self._runtime_setting("set_container_image", name)
        if channel is not None:
            self.container_image = channel
            return self
        if not isinstance(name, str) or not name:
            raise KubelabError(
                f"Task '{self.name}': set_container_image takes a non-empty image name "
                "or a str parameter.",
                task=self.name,
            )
        self.container_image = name
        return self

    def ignore_upstream_failure(self) -> PipelineTask:
        """Run once upstream tasks finish, even if they failed (KFP semantics).

        Inputs fed by upstream tasks must have defaults, since a failed task
        produces no output.
        """
        for name, spec in self.component.inputs.items():
            value = self.arguments.get(name)
            if isinstance(value, PipelineChannel) and value.task is not None and spec.required:
                raise KubelabError(
                    f"Task '{self.name}' cannot ignore upstream failures: input '{name}' comes "
                    f"from task '{value.task.name}' and has no default value.",
                    task=self.name,
                    input=name,
                )
        self.ignore_upstream_failure_tag = True
        return self

    def set_gpu_limit(self, gpu: int | str) -> PipelineTask:
        """Deprecated KFP spelling of set_accelerator_limit."""
        return self.set_accelerator_limit(gpu)

    def set_env_variable(self, name: str, value: str) -> PipelineTask:
        self._require_container("set_env_variable")
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise KubelabError(
                f"Task '{self.name}': {name!r} is not a valid environment variable name.",
                task=self.name,
            )
        self.env[name] = str(value)
        return self

    def __repr__(self) -> str:
        return f"PipelineTask({self.name!r}, component={self.component.name!r})"
