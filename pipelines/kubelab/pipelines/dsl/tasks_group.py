"""Control-flow groups: ParallelFor, If/Elif/Else (and Condition), ExitHandler.

Each `with` block becomes a sub-DAG in the IR (`for-loop-N`, `condition-N`,
`condition-branches-N`, `exit-handler-N`), numbered from one pipeline-wide
counter as KFP does.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Union

from kubelab.pipelines.dsl import types
from kubelab.pipelines.dsl.pipeline_channel import (
    ConditionOperation,
    LoopItem,
    LoopItemField,
    PipelineChannel,
)
from kubelab.pipelines.errors import KubelabError

if TYPE_CHECKING:
    from kubelab.pipelines.dsl.pipeline_context import Pipeline
    from kubelab.pipelines.dsl.pipeline_task import PipelineTask

Node = Union["PipelineTask", "TasksGroup"]


def _current_pipeline(what: str) -> Pipeline:
    from kubelab.pipelines.dsl.pipeline_context import Pipeline

    pipeline = Pipeline.get_default_pipeline()
    if pipeline is None:
        raise KubelabError(f"{what} can only be used inside a @dsl.pipeline function.")
    return pipeline


class TasksGroup:
    """A node of the pipeline tree that holds tasks and other groups."""

    prefix = "group"

    def __init__(self, name: str | None = None) -> None:
        self.children: list[Node] = []
        self.parent: TasksGroup | None = None
        self.display_name = name
        self.name = ""

    def _assign_name(self, pipeline: Pipeline) -> None:
        self.name = f"{self.prefix}-{pipeline.next_id()}"

    def __enter__(self) -> Any:
        pipeline = _current_pipeline(f"dsl.{type(self).__name__}")
        pipeline.push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _current_pipeline(f"dsl.{type(self).__name__}").pop_group(self)

    def walk_tasks(self) -> list[PipelineTask]:
        """Every task in this group and its sub-groups."""
        from kubelab.pipelines.dsl.pipeline_task import PipelineTask

        found: list[PipelineTask] = []
        for child in self.children:
            if isinstance(child, PipelineTask):
                found.append(child)
            else:
                found.extend(child.walk_tasks())
        return found

    def walk_groups(self) -> list[TasksGroup]:
        found: list[TasksGroup] = [self]
        for child in self.children:
            if isinstance(child, TasksGroup):
                found.extend(child.walk_groups())
        return found

    def own_channels(self) -> list[PipelineChannel]:
        """Channels the group itself reads (loop items source, condition operands)."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class RootGroup(TasksGroup):
    """The body of a pipeline function."""

    prefix = "root"


class ExitHandler(TasksGroup):
    """Runs `exit_task` after the tasks in the block, whether they succeed or fail."""

    prefix = "exit-handler"

    def __init__(self, exit_task: PipelineTask, name: str | None = None) -> None:
        from kubelab.pipelines.dsl.pipeline_task import PipelineTask

        super().__init__(name)
        pipeline = _current_pipeline("dsl.ExitHandler")
        if not isinstance(exit_task, PipelineTask):
            raise KubelabError(
                f"dsl.ExitHandler(exit_task) needs a task, got {type(exit_task).__name__}."
            )
        if exit_task.upstream_tasks():
            raise KubelabError(
                f"Exit task '{exit_task.name}' must not depend on other tasks.",
                task=exit_task.name,
            )
        if exit_task.exit_handler is not None:
            raise KubelabError(
                f"Task '{exit_task.name}' is already the exit task of another ExitHandler.",
                task=exit_task.name,
            )
        if not isinstance(pipeline.current_group, RootGroup):
            raise KubelabError(
                "dsl.ExitHandler can only be used at the top level of a pipeline function "
                f"(not inside {pipeline.current_group.name}), as in KFP.",
            )
        self.exit_task = exit_task
        exit_task.exit_handler = self
        self._assign_name(pipeline)


class ParallelFor(TasksGroup):
    """Fan out over a list: a literal, a pipeline parameter or a task output."""

    prefix = "for-loop"

    def __init__(
        self,
        items: list | PipelineChannel,
        parallelism: int | None = None,
        name: str | None = None,
    ) -> None:
        from kubelab.pipelines.dsl.pipeline_task import PipelineTask

        super().__init__(name)
        pipeline = _current_pipeline("dsl.ParallelFor")
        if parallelism is not None and (
            isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 0
        ):
            raise KubelabError(
                f"dsl.ParallelFor: parallelism must be a non-negative int, got {parallelism!r}.",
                parameter="parallelism",
            )
        self.parallelism = parallelism or 0
        self.items = items
        if isinstance(items, PipelineTask):
            items = items.output
            self.items = items
        if isinstance(items, PipelineChannel):
            if items.is_artifact and not items.is_list:
                raise KubelabError(
                    f"dsl.ParallelFor cannot iterate over {items.describe()}; "
                    "pass a list parameter or a list of artifacts.",
                    parameter="items",
                )
            # A field of a dict item may hold a list: KFP cannot check, nor can we.
            if (
                not items.is_artifact
                and not isinstance(items, LoopItemField)
                and items.parameter_type not in (None, types.LIST)
            ):
                raise KubelabError(
                    f"dsl.ParallelFor needs a list, got {items.describe()}.",
                    parameter="items",
                )
            # Over an artifact list each item is one artifact (KFP's artifactIterator).
            # Over a parameter the item has the declared element type (List[int] ->
            # NUMBER_INTEGER), STRING when the list is untyped, as KFP writes it.
            self.item = LoopItem(
                self,
                f"{items.full_name}-loop-item",
                None if items.is_artifact else (items.item_type or types.STRING),
                artifact_class=items.artifact_class,
                field_type=items.item_value_type,
            )
            self._assign_name(pipeline)
        elif isinstance(items, (list, tuple)):
            if not items:
                raise KubelabError("dsl.ParallelFor over an empty list.", parameter="items")
            item_types = {types.constant_parameter_type(v) for v in items}
            if None in item_types:
                raise KubelabError(
                    "dsl.ParallelFor items must be JSON values (str, int, float, bool, "
                    f"list, dict), got {items!r}.",
                    parameter="items",
                )
            # KFP types the item (and a dict item's fields) after the first element.
            first = items[0]
            field_type = None
            if isinstance(first, dict) and first:
                field_type = types.constant_parameter_type(next(iter(first.values())))
            self.item = LoopItem(
                self,
                f"loop-item-param-{pipeline.next_id()}",
                types.constant_parameter_type(first),
                field_type=field_type,
            )
            self._assign_name(pipeline)
        else:
            raise KubelabError(
                f"dsl.ParallelFor needs a list or a pipeline channel, got {type(items).__name__}.",
                parameter="items",
            )

    def __enter__(self) -> LoopItem:
        super().__enter__()
        return self.item

    @property
    def raw_items(self) -> str | None:
        if isinstance(self.items, PipelineChannel):
            return None
        return json.dumps(list(self.items), sort_keys=True)

    def own_channels(self) -> list[PipelineChannel]:
        return [self.items] if isinstance(self.items, PipelineChannel) else []


class Condition(TasksGroup):
    """Runs the block only when `condition` holds (deprecated KFP spelling of If)."""

    prefix = "condition"

    def __init__(self, condition: ConditionOperation | None, name: str | None = None) -> None:
        super().__init__(name)
        self.pipeline = _current_pipeline(f"dsl.{type(self).__name__}")
        if condition is not None and not isinstance(condition, ConditionOperation):
            raise KubelabError(
                f"dsl.{type(self).__name__} needs a comparison of a pipeline channel, e.g. "
                f"dsl.If(task.output == 'heads'); got {condition!r}.",
                parameter="condition",
            )
        if condition is not None:
            for side in (condition.left, condition.right):
                if isinstance(side, PipelineChannel) and (
                    side.is_artifact or side.parameter_type in (types.LIST, types.STRUCT)
                ):
                    raise KubelabError(
                        f"dsl.{type(self).__name__}: cannot compare {side.describe()}; "
                        "conditions take str, int, float or bool parameters.",
                        parameter="condition",
                    )
        self.condition = condition
        # Earlier branches of an If/Elif/Else chain, whose negations also apply.
        self.previous: list[Condition] = []
        self._assign_name(self.pipeline)

    def own_channels(self) -> list[PipelineChannel]:
        channels: list[PipelineChannel] = []
        for cond in [*self.previous, self]:
            if cond.condition is not None:
                for channel in cond.condition.channels():
                    # identity, not ==: channels overload == to build conditions
                    if not any(channel is seen for seen in channels):
                        channels.append(channel)
        return channels


class ConditionBranches(TasksGroup):
    """Wraps an If with its Elif/Else branches (KFP's `condition-branches-N`)."""

    prefix = "condition-branches"


class If(Condition):
    """`with dsl.If(x == 1):` — may be followed by dsl.Elif / dsl.Else blocks."""

    def __init__(self, condition: ConditionOperation, name: str | None = None) -> None:
        super().__init__(condition, name)
        self.branches: ConditionBranches | None = None


class Elif(Condition):
    """A further branch of the preceding dsl.If / dsl.Elif."""

    def __init__(self, condition: ConditionOperation | None, name: str | None = None) -> None:
        pipeline = _current_pipeline(f"dsl.{type(self).__name__}")
        # Wrap first, then take a number: KFP gives the wrapper the If's number and
        # renumbers the If, so ids match what the KFP compiler writes.
        self.branches = self._wrap_previous(pipeline)
        super().__init__(condition, name)
        self.previous = [c for c in self.branches.children if isinstance(c, Condition)]

    def _wrap_previous(self, pipeline: Pipeline) -> ConditionBranches:
        parent = pipeline.current_group
        previous = parent.children[-1] if parent.children else None
        kind = type(self).__name__
        if not isinstance(previous, (If, ConditionBranches)) or (
            isinstance(previous, ConditionBranches) and isinstance(previous.children[-1], Else)
        ):
            raise KubelabError(f"dsl.{kind} must directly follow a dsl.If or dsl.Elif block.")
        if isinstance(previous, ConditionBranches):
            return previous
        branches = ConditionBranches()
        branches.name = previous.name.replace(Condition.prefix, ConditionBranches.prefix, 1)
        previous._assign_name(pipeline)
        parent.children[-1] = branches
        branches.parent = parent
        previous.parent = branches
        previous.branches = branches
        branches.children.append(previous)
        return branches

    def __enter__(self) -> Elif:
        assert self.branches is not None
        self.pipeline.group_stack.append(self.branches)
        self.pipeline.push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.pipeline.pop_group(self)
        self.pipeline.pop_group(self.branches)


class Else(Elif):
    """The last branch: runs when no earlier If/Elif condition held."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(None, name)
