"""Pure builder: a pipeline (or a single component) → KFP v2 IR as a dict.

Shapes mirror the KFP 2.x compiler: a root DAG, one `comp-*` per task and per
control-flow group, one `exec-*` per container task, `pipelinechannel--*` inputs
to carry values into sub-DAGs. The result is round-tripped through the real
`kfp-pipeline-spec` protobuf, which both validates it and normalises it to what
KFP itself writes.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from google.protobuf import json_format

from kubelab.pipelines.compiler import compiler_utils as cu
from kubelab.pipelines.dsl import placeholders as ph
from kubelab.pipelines.dsl import types
from kubelab.pipelines.dsl.base_component import BaseComponent
from kubelab.pipelines.dsl.graph_component import GraphComponent
from kubelab.pipelines.dsl.kubernetes import INLINE_REFERENCE
from kubelab.pipelines.dsl.one_of import OneOf
from kubelab.pipelines.dsl.pipeline_channel import (
    Collected,
    LoopItem,
    LoopItemField,
    PipelineChannel,
)
from kubelab.pipelines.dsl.pipeline_context import Pipeline, sanitize_name
from kubelab.pipelines.dsl.pipeline_task import IMAGE_INPUT, RESOURCE_INPUTS, PipelineTask
from kubelab.pipelines.dsl.tasks_group import (
    Condition,
    ConditionBranches,
    ExitHandler,
    ParallelFor,
    RootGroup,
    TasksGroup,
)
from kubelab.pipelines.dsl.yaml_component import YamlComponent
from kubelab.pipelines.errors import KubelabError

SCHEMA_VERSION = "2.1.0"
_PIPELINE_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"


def sdk_version() -> str:
    from kubelab.pipelines import __version__

    return f"kubelab-{__version__}"


@dataclasses.dataclass
class _Graph:
    """What the builder needs from a pipeline: interface, recorded DAG, outputs."""

    name: str
    description: str | None
    display_name: str | None
    pipeline_root: str | None
    inputs: dict[str, types.IOSpec]
    outputs: dict[str, types.IOSpec]
    pipeline: Pipeline
    output_channels: dict[str, PipelineChannel]


def _placeholder(channel: PipelineChannel) -> str:
    """The text the backend replaces with the value of a channel read as an extra input."""
    return ph.InputValuePlaceholder(channel.input_key).render()


def _setting(value: str | PipelineChannel) -> str:
    return _placeholder(value) if isinstance(value, PipelineChannel) else value


def _with_placeholders(value: Any, task: PipelineTask) -> Any:
    """A constant with each formatted channel (f-string) replaced by its placeholder."""
    if isinstance(value, str):
        for channel in task.string_channels:
            value = value.replace(str(channel), _placeholder(channel))
        return value
    if isinstance(value, list):
        return [_with_placeholders(v, task) for v in value]
    if isinstance(value, dict):
        return {k: _with_placeholders(v, task) for k, v in value.items()}
    return value


def _whole_item(channel: PipelineChannel) -> PipelineChannel:
    return channel.item if isinstance(channel, LoopItemField) else channel


def _producer(channel: PipelineChannel) -> PipelineTask | TasksGroup | None:
    """The task (or, for dsl.OneOf, the If/Elif/Else group) that produces a channel."""
    if isinstance(channel, OneOf):
        return channel.branches
    return channel.task


def _as_graph(obj: Any) -> _Graph:
    if isinstance(obj, GraphComponent):
        return _Graph(
            obj.name,
            obj.description,
            obj.display_name,
            obj.pipeline_root,
            obj.inputs,
            obj.outputs,
            obj.pipeline,
            obj.output_channels,
        )
    if isinstance(obj, BaseComponent):
        # A lone component compiles as a one-task pipeline with the same interface.
        pipeline = Pipeline(sanitize_name(obj.name))
        inputs = obj.inputs
        with pipeline:
            task = PipelineTask(
                obj,
                {n: PipelineChannel.from_spec(s) for n, s in inputs.items()},
            )
        outputs = {n: dataclasses.replace(s, passing="value") for n, s in obj.outputs.items()}
        return _Graph(
            sanitize_name(obj.name),
            obj.description,
            None,
            None,
            inputs,
            outputs,
            pipeline,
            dict(task.outputs),
        )
    raise KubelabError(
        "Expected a @dsl.pipeline function or a component, got "
        f"{type(obj).__name__}. Decorate it with @dsl.pipeline or @dsl.component.",
    )


def _parameters_and_artifacts(
    parameters: dict[str, Any], artifacts: dict[str, Any]
) -> dict[str, Any]:
    """IR inputs/outputs blocks leave out an empty `parameters` or `artifacts` map."""
    return {
        key: value for key, value in (("parameters", parameters), ("artifacts", artifacts)) if value
    }


def _io_definitions(specs: dict[str, types.IOSpec]) -> dict[str, Any]:
    return _parameters_and_artifacts(
        {n: s.to_ir() for n, s in specs.items() if not s.is_artifact},
        {n: s.to_ir() for n, s in specs.items() if s.is_artifact},
    )


def _channel_definition(channel: PipelineChannel, as_list: bool = False) -> dict[str, Any]:
    if channel.artifact_class is not None:
        spec: dict[str, Any] = {"artifactType": types.artifact_type_schema(channel.artifact_class)}
        if channel.is_list or as_list:
            spec["isArtifactList"] = True
        return spec
    ptype = types.LIST if as_list else (channel.parameter_type or types.STRING)
    return {"parameterType": ptype}


class _Builder:
    """Accumulates components and executors across a pipeline and its sub-pipelines."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}
        self.executors: dict[str, Any] = {}
        self.platform_executors: dict[str, Any] = {}
        self._taken: set[str] = set()
        # Per group (by id): channels it must expose as DAG outputs.
        self._exposed: dict[int, dict[str, PipelineChannel]] = {}
        self._group_component_names: dict[int, str] = {}

    def unique(self, base: str) -> str:
        name, n = base, 1
        while name in self._taken:
            n += 1
            name = f"{base}-{n}"
        self._taken.add(name)
        return name

    # ------------------------------------------------------------ channel refs
    def _needed_inputs(self, group: TasksGroup) -> dict[str, PipelineChannel]:
        """Channels a sub-DAG reads from outside itself, by their input key.

        As in KFP, a task also reads the channels of every condition around it, and
        a field of a loop item (`item.a`) is read as the whole item, except by the
        condition or loop that tests or iterates over the field itself.
        """
        used: list[PipelineChannel] = []
        for sub in group.walk_groups():
            for channel in sub.own_channels():
                if sub is group and isinstance(channel, LoopItemField):
                    used.append(channel)
                used.append(_whole_item(channel))
        for task in group.walk_tasks():
            used.extend(_whole_item(c) for c in [*task.channels(), *cu.condition_channels(task)])
        found: dict[str, PipelineChannel] = {}
        for channel in used:
            if isinstance(channel, LoopItem):
                outside = channel.loop is not group and not cu.contains(group, channel.loop)
            else:
                producer = _producer(channel)
                outside = producer is None or not cu.contains(group, producer)
            if outside:
                found.setdefault(self._input_key(channel, group), channel)
        return found

    @staticmethod
    def _input_key(channel: PipelineChannel, consumer: cu.Node) -> str:
        """The input name that carries `channel` into the sub-DAGs around `consumer`.

        A dsl.Collected list is named after the group that surfaces it, as KFP does
        (`pipelinechannel--for-loop-2-pipelinechannel--task-out`).
        """
        if isinstance(channel, Collected) and channel.task is not None:
            surfacing = cu.child_containing(
                cu.common_ancestor(consumer, channel.task), channel.task
            )
            if surfacing is not None and surfacing is not channel.task:
                return f"pipelinechannel--{surfacing.name}-{channel.input_key}"
        return channel.input_key

    def _source(
        self, channel: PipelineChannel, group: TasksGroup, consumer: str, exposing: bool = False
    ) -> tuple[str, str]:
        """(producer child name, output key) of a channel produced inside `group`."""
        producer = _producer(channel)
        assert producer is not None
        child = cu.child_containing(group, producer)
        assert child is not None
        if isinstance(channel, OneOf) and child is producer:
            self._exposed.setdefault(id(child), {})[channel.input_key] = channel
            return child.name, channel.input_key
        if child is channel.task:
            if isinstance(channel, Collected) and not exposing:
                raise KubelabError(
                    f"{consumer}: dsl.Collected({channel.task.name}...) needs a task inside "
                    "a dsl.ParallelFor that the consumer is outside of.",
                    task=channel.task.name,
                )
            return child.name, channel.name
        assert isinstance(child, TasksGroup)
        if isinstance(child, ParallelFor) and not isinstance(channel, Collected):
            raise KubelabError(
                f"{consumer} uses {channel.describe()}, which is produced inside "
                f"dsl.ParallelFor '{child.name}'; wrap it in dsl.Collected(...) to get "
                "the list of all values.",
                task=producer.name,
            )
        if isinstance(child, (Condition, ConditionBranches)) and not isinstance(channel, Collected):
            raise KubelabError(
                f"{consumer} uses {channel.describe()}, which is produced inside a "
                "dsl.If/Elif/Else/Condition block and may not exist; use it inside the block "
                "or combine the branches' outputs with dsl.OneOf(...).",
                task=producer.name,
            )
        self._exposed.setdefault(id(child), {})[channel.input_key] = channel
        return child.name, channel.input_key

    def _reference(
        self, channel: PipelineChannel, group: TasksGroup, consumer: str
    ) -> dict[str, Any]:
        """The TaskInputsSpec entry that feeds `channel` to a direct child of `group`."""
        is_root = isinstance(group, RootGroup)
        artifact = channel.is_artifact
        producer = _producer(channel)
        if isinstance(channel, LoopItemField):
            return {
                "componentInputParameter": channel.item.input_key,
                "parameterExpressionSelector": channel.selector,
            }
        if isinstance(channel, LoopItem) or producer is None:
            key = (
                channel.name if is_root and not isinstance(channel, LoopItem) else channel.input_key
            )
            return {"componentInputArtifact": key} if artifact else {"componentInputParameter": key}
        if not cu.contains(group, producer):
            key = self._input_key(channel, group)
            return {"componentInputArtifact": key} if artifact else {"componentInputParameter": key}
        producer, output_key = self._source(channel, group, consumer)
        if artifact:
            return {
                "taskOutputArtifact": {"producerTask": producer, "outputArtifactKey": output_key}
            }
        return {"taskOutputParameter": {"producerTask": producer, "outputParameterKey": output_key}}

    # ------------------------------------------------------------------ tasks
    def _dependencies(self, node: cu.Node, group: TasksGroup) -> list[str]:
        upstream: list[Any] = []
        tasks = [node] if isinstance(node, PipelineTask) else node.walk_tasks()
        for task in tasks:
            upstream.extend(task.upstream_tasks())
            upstream.extend(c.branches for c in task.channels() if isinstance(c, OneOf))
            if task.exit_handler is not None:
                upstream.append(task.exit_handler)
        if isinstance(node, TasksGroup):
            for sub in node.walk_groups():
                upstream.extend(c.task for c in sub.own_channels() if c.task is not None)
        names: list[str] = []
        for up in upstream:
            child = cu.child_containing(group, up)
            if child is None or child is node:
                continue
            if child is not up and isinstance(child, (ExitHandler, Condition, ConditionBranches)):
                kind = "dsl.ExitHandler" if isinstance(child, ExitHandler) else "dsl.If/Condition"
                raise KubelabError(
                    f"'{node.name}' depends on task '{up.name}', which is inside {kind} "
                    f"block '{child.name}'; KFP only allows that from inside the same block.",
                    task=node.name,
                    upstream=up.name,
                )
            if child.name not in names:
                names.append(child.name)
        return sorted(names)

    def _node_spec(
        self,
        node: PipelineTask | TasksGroup,
        group: TasksGroup,
        component: str,
        parameters: dict[str, Any],
        artifacts: dict[str, Any],
    ) -> dict[str, Any]:
        """What a task and a sub-DAG entry in `group`'s DAG have in common."""
        spec: dict[str, Any] = {
            "taskInfo": {"name": node.display_name or node.name},
            "componentRef": {"name": component},
        }
        inputs = _parameters_and_artifacts(parameters, artifacts)
        if inputs:
            spec["inputs"] = inputs
        deps = self._dependencies(node, group)
        if deps:
            spec["dependentTasks"] = deps
        return spec

    def _task_spec(self, task: PipelineTask, group: TasksGroup) -> dict[str, Any]:
        consumer = f"Task '{task.name}'"
        parameters: dict[str, Any] = {}
        artifacts: dict[str, Any] = {}
        for name, spec in task.component.inputs.items():
            if spec.parameter_type == types.TASK_FINAL_STATUS and name not in task.arguments:
                if task.exit_handler is None:
                    raise KubelabError(
                        f"{consumer}: input '{name}' is a PipelineTaskFinalStatus, which only "
                        "an exit task of dsl.ExitHandler receives.",
                        task=task.name,
                        input=name,
                    )
                parameters[name] = {"taskFinalStatus": {"producerTask": task.exit_handler.name}}
                continue
            if name not in task.arguments:
                continue
            value = task.arguments[name]
            target = artifacts if spec.is_artifact else parameters
            if isinstance(value, PipelineChannel):
                target[name] = self._reference(value, group, consumer)
            else:
                target[name] = {"runtimeValue": {"constant": _with_placeholders(value, task)}}
        # Channels formatted into constants, and run-time settings, become extra inputs
        # that the backend substitutes into the `{{$.inputs.parameters[...]}}` text.
        for channel in [*task.string_channels, *task.setting_channels()]:
            parameters[channel.input_key] = self._reference(channel, group, consumer)
        settings = {**task.resources, **task.accelerator, IMAGE_INPUT: task.container_image}
        for key, value in settings.items():
            if isinstance(value, PipelineChannel):
                placeholder = _placeholder(value)
                parameters[RESOURCE_INPUTS.get(key, key)] = {
                    "runtimeValue": {"constant": placeholder}
                }
        component = self._task_component(task, group, consumer)
        spec = self._node_spec(task, group, component, parameters, artifacts)
        caching: dict[str, Any] = {"enableCache": True} if task.enable_caching else {}
        if task.cache_key:
            caching["cacheKey"] = task.cache_key
        spec["cachingOptions"] = caching
        if task.retry_policy:
            spec["retryPolicy"] = dict(task.retry_policy)
        if task.exit_handler is not None or task.ignore_upstream_failure_tag:
            spec["triggerPolicy"] = {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
        return spec

    def _task_component(self, task: PipelineTask, group: TasksGroup, consumer: str) -> str:
        component = task.component
        if isinstance(component, GraphComponent):
            # As KFP: the sub-pipeline's components are named first, then its own.
            graph = self.build_graph(_as_graph(component))
            name = self.unique(f"comp-{task.name}")
            self.components[name] = graph
            return name
        if isinstance(component, YamlComponent) and component.pipeline_spec is not None:
            root = self._merge_compiled(component)
            name = self.unique(f"comp-{task.name}")
            self.components[name] = root
            return name
        name = self.unique(f"comp-{task.name}")
        executor = self.unique(f"exec-{task.name}")
        body = copy.deepcopy(component.executor_spec())
        assert body is not None
        container = body.get("container")
        if container is not None:
            if task.container_image:
                container["image"] = _setting(task.container_image)
            if task.env:
                # The task's variables update the component's own, as in KFP.
                env = {e["name"]: e["value"] for e in container.get("env", [])} | task.env
                container["env"] = [{"name": k, "value": v} for k, v in env.items()]
            resources = cu.container_resources(
                {k: _setting(v) for k, v in task.resources.items()},
                {k: _setting(v) for k, v in task.accelerator.items()},
            )
            if resources:
                container["resources"] = resources
        self.executors[executor] = body
        if task.platform_config.get("kubernetes"):
            self.platform_executors[executor] = self._platform_references(
                task.platform_config["kubernetes"], group, consumer
            )
        self.components[name] = {
            "executorLabel": executor,
            **self._interface(component.inputs, component.outputs),
        }
        return name

    def _merge_compiled(self, component: YamlComponent) -> dict[str, Any]:
        """Fold a compiled pipeline's executors and components into this one, renamed
        where names are taken (KFP's merge), and return its root DAG component."""
        assert component.pipeline_spec is not None
        spec = copy.deepcopy(component.pipeline_spec)
        platform = (
            component.platform_spec.get("platforms", {})
            .get("kubernetes", {})
            .get("deploymentSpec", {})
            .get("executors", {})
        )
        executors: dict[str, str] = {}
        for label, body in spec.get("deploymentSpec", {}).get("executors", {}).items():
            executors[label] = self.unique(label)
            self.executors[executors[label]] = body
            if label in platform:
                self.platform_executors[executors[label]] = copy.deepcopy(platform[label])
        renamed = {name: self.unique(name) for name in spec.get("components", {})}

        def relabel(definition: dict[str, Any]) -> dict[str, Any]:
            if "executorLabel" in definition:
                definition["executorLabel"] = executors[definition["executorLabel"]]
            for task in definition.get("dag", {}).get("tasks", {}).values():
                ref = task["componentRef"]
                ref["name"] = renamed.get(ref["name"], ref["name"])
            return definition

        for name, definition in spec.get("components", {}).items():
            self.components[renamed[name]] = relabel(definition)
        return relabel(spec["root"])

    def _platform_references(self, config: Any, group: TasksGroup, consumer: str) -> Any:
        """A copy of a platform config with its channels turned into references."""
        if isinstance(config, PipelineChannel):
            return self._reference(config, group, consumer)
        if isinstance(config, list):
            return [self._platform_references(v, group, consumer) for v in config]
        if not isinstance(config, dict):
            return copy.deepcopy(config)
        resolved: dict[str, Any] = {}
        for key, value in config.items():
            if key == INLINE_REFERENCE:
                resolved.update(self._reference(value, group, consumer))
            else:
                resolved[key] = self._platform_references(value, group, consumer)
        return resolved

    @staticmethod
    def _interface(
        inputs: dict[str, types.IOSpec], outputs: dict[str, types.IOSpec]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if inputs:
            out["inputDefinitions"] = _io_definitions(inputs)
        if outputs:
            out["outputDefinitions"] = _io_definitions(outputs)
        return out

    def _group_spec(self, child: TasksGroup, group: TasksGroup) -> dict[str, Any]:
        consumer = f"Block '{child.name}'"
        parameters: dict[str, Any] = {}
        artifacts: dict[str, Any] = {}
        for key, channel in sorted(self._needed_inputs(child).items()):
            target = artifacts if channel.is_artifact else parameters
            target[key] = self._reference(channel, group, consumer)
        spec = self._node_spec(
            child, group, self._group_component_names[id(child)], parameters, artifacts
        )
        if isinstance(child, ParallelFor):
            if child.item.is_artifact:
                spec["artifactIterator"] = {
                    "itemInput": child.item.input_key,
                    "items": {"inputArtifact": child.items.input_key},  # type: ignore[union-attr]
                }
            else:
                items = (
                    {"raw": child.raw_items}
                    if child.raw_items is not None
                    else {"inputParameter": child.items.input_key}  # type: ignore[union-attr]
                )
                spec["parameterIterator"] = {"itemInput": child.item.input_key, "items": items}
            if child.parallelism:
                spec["iteratorPolicy"] = {"parallelismLimit": child.parallelism}
        if isinstance(child, Condition):
            condition = cu.trigger_condition(child)
            if condition:
                spec["triggerPolicy"] = {"condition": condition}
        return spec

    # ------------------------------------------------------------------- DAGs
    def _build_group(self, group: TasksGroup, graph: _Graph) -> dict[str, Any]:
        """DAG of one group; sub-groups become components of their own."""
        tasks: dict[str, Any] = {}
        # KFP names a DAG's sub-groups before its tasks (whose sub-pipelines may reuse
        # the same group names), so components get the same -2, -3 suffixes.
        subgroups = [c for c in group.children if isinstance(c, TasksGroup)]
        for child in subgroups:
            self._group_component_names[id(child)] = self.unique(f"comp-{child.name}")
        # Exit tasks come last, after everything they guard (KFP's order, again).
        members = [c for c in group.children if isinstance(c, PipelineTask)]
        exit_tasks = [t for t in members if t.exit_handler is not None]
        for child in members:
            if child.exit_handler is None:
                tasks[child.name] = self._task_spec(child, group)
        for child in subgroups:
            tasks[child.name] = self._group_spec(child, group)
        where = "the pipeline" if isinstance(group, RootGroup) else f"block '{group.name}'"
        cu.check_acyclic(
            {name: list(spec.get("dependentTasks", [])) for name, spec in tasks.items()},
            f"{where} of '{graph.name}'",
        )
        dag: dict[str, Any] = {"tasks": tasks}
        outputs = self._dag_outputs(group, graph)
        if outputs:
            dag["outputs"] = outputs
        for child in subgroups:
            self.components[self._group_component_names[id(child)]] = self._group_component(
                child, graph
            )
        for child in exit_tasks:
            tasks[child.name] = self._task_spec(child, group)
        return dag

    def _dag_outputs(self, group: TasksGroup, graph: _Graph) -> dict[str, Any]:
        if isinstance(group, RootGroup):
            wanted = dict(graph.output_channels)
        else:
            wanted = dict(self._exposed.get(id(group), {}))
        parameters: dict[str, Any] = {}
        artifacts: dict[str, Any] = {}
        for key, channel in wanted.items():
            if isinstance(channel, OneOf) and channel.branches is group:
                selectors = self._one_of_selectors(channel, group)
                if channel.is_artifact:
                    artifacts[key] = {
                        "artifactSelectors": [
                            {"producerSubtask": p, "outputArtifactKey": k} for p, k in selectors
                        ]
                    }
                else:
                    parameters[key] = {
                        "valueFromOneof": {
                            "parameterSelectors": [
                                {"producerSubtask": p, "outputParameterKey": k}
                                for p, k in selectors
                            ]
                        }
                    }
                continue
            producer, output_key = self._source(
                channel,
                group,
                f"Pipeline output '{key}'",
                exposing=not isinstance(group, RootGroup),
            )
            if channel.is_artifact:
                artifacts[key] = {
                    "artifactSelectors": [
                        {"producerSubtask": producer, "outputArtifactKey": output_key}
                    ]
                }
            else:
                parameters[key] = {
                    "valueFromParameter": {
                        "producerSubtask": producer,
                        "outputParameterKey": output_key,
                    }
                }
        return _parameters_and_artifacts(parameters, artifacts)

    def _one_of_selectors(self, channel: OneOf, group: TasksGroup) -> list[tuple[str, str]]:
        """(branch, key) per member; each branch exposes its member's output."""
        selectors = []
        for member in channel.members:
            assert member.task is not None
            branch = cu.child_containing(group, member.task)
            assert isinstance(branch, Condition)
            self._exposed.setdefault(id(branch), {})[member.input_key] = member
            selectors.append((branch.name, member.input_key))
        return selectors

    def _group_component(self, group: TasksGroup, graph: _Graph) -> dict[str, Any]:
        dag = self._build_group(group, graph)
        inputs: dict[str, Any] = {}
        for key, channel in sorted(self._needed_inputs(group).items()):
            section = "artifacts" if channel.is_artifact else "parameters"
            inputs.setdefault(section, {})[key] = _channel_definition(channel)
        if isinstance(group, ParallelFor):
            item = group.item
            if item.is_artifact:
                inputs.setdefault("artifacts", {})[item.input_key] = _channel_definition(item)
            else:
                inputs.setdefault("parameters", {})[item.input_key] = {
                    "parameterType": item.parameter_type or types.STRING
                }
        component: dict[str, Any] = {"dag": dag}
        if inputs:
            component["inputDefinitions"] = inputs
        outputs: dict[str, Any] = {}
        for key, channel in self._exposed.get(id(group), {}).items():
            section = "artifacts" if channel.is_artifact else "parameters"
            outputs.setdefault(section, {})[key] = _channel_definition(
                channel, as_list=isinstance(channel, Collected)
            )
        if outputs:
            component["outputDefinitions"] = outputs
        return component

    def build_graph(self, graph: _Graph) -> dict[str, Any]:
        """The component of a whole pipeline: its DAG plus its interface."""
        dag = self._build_group(graph.pipeline.root, graph)
        return {"dag": dag, **self._interface(graph.inputs, graph.outputs)}


def _apply_pipeline_parameters(
    graph: _Graph, parameters: dict[str, Any] | None
) -> dict[str, types.IOSpec]:
    inputs = {n: dataclasses.replace(s) for n, s in graph.inputs.items()}
    for key, value in (parameters or {}).items():
        spec = inputs.get(key)
        if spec is None:
            known = ", ".join(sorted(inputs)) or "none"
            raise KubelabError(
                f"Pipeline '{graph.name}' has no parameter '{key}' (its parameters are: {known}).",
                pipeline=graph.name,
                parameter=key,
            )
        if spec.is_artifact:
            raise KubelabError(
                f"Pipeline '{graph.name}': parameter '{key}' is an artifact input and "
                "cannot take a value.",
                pipeline=graph.name,
                parameter=key,
            )
        assert spec.parameter_type is not None
        types.check_constant(graph.name, key, spec.parameter_type, value)
        spec.default = types.normalise_constant(spec.parameter_type, value)
    return inputs


def _check_pipeline_name(name: str) -> None:
    if (
        not name
        or len(name) > 128
        or any(c not in _PIPELINE_NAME_CHARS for c in name)
        or (name[0] == "-")
    ):
        raise KubelabError(
            f"Invalid pipeline name {name!r}: use lower-case letters, digits and '-' "
            "(at most 128 characters, not starting with '-'), e.g. 'my-pipeline'.",
            pipeline=name,
        )


def build_specs(
    pipeline_or_component: Any, pipeline_parameters: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(PipelineSpec dict, PlatformSpec dict or None) for a pipeline or a component."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    graph = _as_graph(pipeline_or_component)
    _check_pipeline_name(graph.name)
    required = {n for n, s in graph.inputs.items() if s.required}
    graph.inputs = _apply_pipeline_parameters(graph, pipeline_parameters)
    builder = _Builder()
    root = builder.build_graph(graph)
    # A default given at compile time does not make an input optional (KFP's rule).
    for name, definition in root.get("inputDefinitions", {}).get("parameters", {}).items():
        if name in required:
            definition.pop("isOptional", None)
    info: dict[str, Any] = {"name": graph.name}
    # A lone component keeps its description for the file header only, as in KFP.
    if graph.description and isinstance(pipeline_or_component, GraphComponent):
        info["description"] = graph.description
    if graph.display_name:
        info["displayName"] = graph.display_name
    spec: dict[str, Any] = {
        "pipelineInfo": info,
        "root": root,
        "components": builder.components,
        "deploymentSpec": {"executors": builder.executors},
        "schemaVersion": SCHEMA_VERSION,
        "sdkVersion": sdk_version(),
    }
    if graph.pipeline_root:
        spec["defaultPipelineRoot"] = graph.pipeline_root
    spec = json_format.MessageToDict(
        json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    )
    kubernetes: dict[str, Any] = {}
    if builder.platform_executors:
        kubernetes["deploymentSpec"] = {"executors": builder.platform_executors}
    config = getattr(pipeline_or_component, "pipeline_config", None)
    if config is not None and config.to_platform():
        kubernetes["pipelineConfig"] = config.to_platform()
    platform = None
    if kubernetes:
        platform = {"platforms": {"kubernetes": kubernetes}}
        platform = json_format.MessageToDict(
            json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
        )
    return spec, platform


def build_pipeline_spec(
    pipeline_or_component: Any, pipeline_parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The PipelineSpec (KFP v2 IR) as a JSON-compatible dict — exactly what compile writes."""
    return build_specs(pipeline_or_component, pipeline_parameters)[0]
