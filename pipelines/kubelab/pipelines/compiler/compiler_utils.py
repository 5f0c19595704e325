"""Small helpers of the compiler: tree navigation, CEL conditions, cycle checks."""

from __future__ import annotations

import json
from typing import Any

from kubelab.pipelines.dsl import types
from kubelab.pipelines.dsl.pipeline_channel import ConditionOperation, PipelineChannel
from kubelab.pipelines.dsl.pipeline_task import PipelineTask
from kubelab.pipelines.dsl.tasks_group import Condition, TasksGroup
from kubelab.pipelines.errors import KubelabError

Node = PipelineTask | TasksGroup


def child_containing(group: TasksGroup, node: Node) -> Node | None:
    """The direct child of `group` that is `node` or contains it, else None."""
    current: Node | None = node
    while current is not None and current.parent is not group:
        current = current.parent
    return current


def contains(group: TasksGroup, node: Node) -> bool:
    current: Node | None = node
    while current is not None:
        if current is group:
            return True
        current = current.parent
    return False


def _operand(value: Any) -> str:
    if isinstance(value, PipelineChannel):
        text = f"inputs.parameter_values['{value.input_key}']"
        if value.parameter_type == types.NUMBER_INTEGER:
            text = f"int({text})"
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise KubelabError(
        f"Conditions compare with str, int, float or bool constants, got {value!r}.",
        value=repr(value),
    )


def condition_expression(operation: ConditionOperation) -> str:
    """KFP's CEL rendering of `left op right` over the group's own inputs."""
    return f"{_operand(operation.left)} {operation.operator} {_operand(operation.right)}"


def trigger_condition(group: Condition) -> str | None:
    """The condition of a branch, with the negation of every earlier branch."""
    parts = [
        f"!({condition_expression(c.condition)})" for c in group.previous if c.condition is not None
    ]
    if group.condition is not None:
        parts.append(condition_expression(group.condition))
    return " && ".join(parts) or None


def check_acyclic(dependencies: dict[str, list[str]], where: str) -> None:
    """Raise naming the cycle if `after`/data dependencies loop back."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in dependencies.get(name, []):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                raise KubelabError(
                    f"Dependency cycle in {where}: {' -> '.join(cycle)}.",
                    tasks=cycle,
                )
            if dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in dependencies:
        if name not in state:
            visit(name)


def reject_formatted_channels(task: PipelineTask, name: str, value: Any) -> None:
    """Constants that embed a channel's str() came from an f-string in the pipeline."""
    text = json.dumps(value) if not isinstance(value, str) else value
    if "{{channel:" in text:
        raise KubelabError(
            f"Task '{task.name}': input '{name}' formats a pipeline channel into a string "
            "(f-string or str()); pass the channel itself and build the string inside "
            "the component.",
            task=task.name,
            input=name,
        )
