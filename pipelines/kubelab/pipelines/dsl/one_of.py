"""`dsl.OneOf`: the output of whichever If/Elif/Else branch ran.

The value is produced by the `condition-branches-N` group itself (KFP's
`valueFromOneof` / multi-entry `artifactSelectors`), so it can be used after the
branches, or returned from the pipeline.
"""

from __future__ import annotations

from kubelab.pipelines.dsl.pipeline_channel import PipelineChannel
from kubelab.pipelines.dsl.pipeline_task import PipelineTask
from kubelab.pipelines.dsl.tasks_group import Condition, ConditionBranches, Else, TasksGroup
from kubelab.pipelines.errors import KubelabError


def _branch_of(task: PipelineTask) -> tuple[ConditionBranches, Condition] | None:
    node: PipelineTask | TasksGroup | None = task
    while node is not None and node.parent is not None:
        parent = node.parent
        if isinstance(parent, ConditionBranches) and isinstance(node, Condition):
            return parent, node
        node = parent
    return None


class OneOf(PipelineChannel):
    """`dsl.OneOf(a.output, b.output, ...)`: one channel per branch of an If/Elif/Else."""

    def __init__(self, *channels: PipelineChannel | PipelineTask) -> None:
        members = [c.output if isinstance(c, PipelineTask) else c for c in channels]
        if len(members) < 2 or not all(
            isinstance(c, PipelineChannel) and c.task is not None for c in members
        ):
            raise KubelabError(
                "dsl.OneOf takes two or more task outputs, one from each dsl.If/Elif/Else branch."
            )
        branches: ConditionBranches | None = None
        used: list[Condition] = []
        for channel in members:
            assert channel.task is not None
            found = _branch_of(channel.task)
            if found is None or (branches is not None and found[0] is not branches):
                raise KubelabError(
                    f"dsl.OneOf: {channel.describe()} is not inside a branch of the same "
                    "dsl.If/Elif/Else chain as the other outputs.",
                    task=channel.task.name,
                )
            branches, branch = found
            if any(branch is b for b in used):
                raise KubelabError(
                    f"dsl.OneOf: two outputs come from the same branch '{branch.name}'.",
                    task=channel.task.name,
                )
            used.append(branch)
        assert branches is not None
        conditions = [c for c in branches.children if isinstance(c, Condition)]
        if len(used) != len(conditions) or not isinstance(conditions[-1], Else):
            raise KubelabError(
                "dsl.OneOf needs exactly one output from every branch of an If/Elif/Else "
                "chain that ends with dsl.Else (so that one of them always exists).",
            )
        first = members[0]
        for channel in members[1:]:
            same = (
                channel.artifact_class is not None
                and first.artifact_class is not None
                and channel.artifact_class.schema_title == first.artifact_class.schema_title
            ) or (
                channel.artifact_class is None
                and first.artifact_class is None
                and channel.parameter_type == first.parameter_type
            )
            if not same:
                raise KubelabError(
                    f"dsl.OneOf: outputs must share one type; {first.describe()} and "
                    f"{channel.describe()} differ.",
                )
        count = getattr(branches, "_oneof_count", 0) + 1
        branches._oneof_count = count  # type: ignore[attr-defined]
        super().__init__(
            f"{branches.name}-oneof-{count}",
            parameter_type=first.parameter_type,
            artifact_class=first.artifact_class,
            is_list=first.is_list,
        )
        self.branches = branches
        self.members = members

    @property
    def full_name(self) -> str:
        return self.name
