"""Small helpers of the compiler: tree navigation, CEL conditions, cycle checks."""

from __future__ import annotations

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


def common_ancestor(node: Node, other: Node) -> TasksGroup:
    """The innermost group that contains both nodes."""
    current = node if isinstance(node, TasksGroup) else node.parent
    while current is not None and not contains(current, other):
        current = current.parent
    assert current is not None, "nodes of one pipeline share its root"
    return current


def condition_channels(task: PipelineTask) -> list[PipelineChannel]:
    """Channels tested by the conditions around a task (KFP passes them down to it)."""
    found: list[PipelineChannel] = []
    group = task.parent
    while group is not None:
        if isinstance(group, Condition):
            found.extend(group.own_channels())
        group = group.parent
    return found


def _operand_type(value: Any) -> str:
    if isinstance(value, PipelineChannel):
        return value.parameter_type or types.STRING
    given = types.constant_parameter_type(value)
    if given not in (types.STRING, types.NUMBER_INTEGER, types.NUMBER_DOUBLE, types.BOOLEAN):
        raise KubelabError(
            f"Conditions compare with str, int, float or bool constants, got {value!r}.",
            value=repr(value),
        )
    return given


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
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _promoted(value: Any, text: str, kind: str, canonical: str) -> str:
    """An operand brought to the comparison's type, with KFP's casts."""
    if kind == canonical:
        return text
    if canonical == types.STRING:
        return f"'{text}'"
    if canonical == types.BOOLEAN and not isinstance(value, PipelineChannel):
        return "true" if float(text) == 0 else "false"
    if canonical == types.NUMBER_DOUBLE:
        return f"double({text})"
    return text


def condition_expression(operation: ConditionOperation) -> str:
    """KFP's CEL rendering of `left op right` over the group's own inputs.

    Operands of different types meet in KFP's order str > bool > float > int: a
    string loop item compared with 2 compares with '2', an int with 0.5 as a double.
    """
    sides = (operation.left, operation.right)
    kinds = [_operand_type(v) for v in sides]
    canonical = kinds[0]
    if kinds[0] != kinds[1]:
        for candidate in (types.STRING, types.BOOLEAN, types.NUMBER_DOUBLE):
            if candidate in kinds:
                canonical = candidate
                break
    left, right = (
        _promoted(v, _operand(v), kind, canonical) for v, kind in zip(sides, kinds, strict=True)
    )
    return f"{left} {operation.operator} {right}"


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


_MEMORY_UNITS = {
    "Ei": 2**60, "Pi": 2**50, "Ti": 2**40, "Gi": 2**30, "Mi": 2**20, "Ki": 2**10,
    "E": 10**18, "P": 10**15, "T": 10**12, "G": 10**9, "M": 10**6, "K": 10**3, "k": 10**3,
}  # fmt: skip


def _is_placeholder(value: str) -> bool:
    return value.startswith("{{$")


def _cpu_cores(cpu: str) -> float:
    return float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


def _memory_gigabytes(memory: str) -> float:
    for unit, factor in _MEMORY_UNITS.items():
        if memory.endswith(unit):
            return float(memory[: -len(unit)]) * factor / 10**9
    return float(memory) / 10**9


_LEGACY_RESOURCES = {
    "resourceCpuLimit": ("cpuLimit", _cpu_cores),
    "resourceCpuRequest": ("cpuRequest", _cpu_cores),
    "resourceMemoryLimit": ("memoryLimit", _memory_gigabytes),
    "resourceMemoryRequest": ("memoryRequest", _memory_gigabytes),
}


def container_resources(resources: dict[str, str], accelerator: dict[str, str]) -> dict[str, Any]:
    """A container's ResourceSpec, with the deprecated numeric fields KFP still writes
    beside the string ones (for older servers) whenever the value is a constant."""
    spec: dict[str, Any] = dict(resources)
    for key, value in resources.items():
        if not _is_placeholder(value):
            legacy, convert = _LEGACY_RESOURCES[key]
            spec[legacy] = convert(value)
    if accelerator:
        spec["accelerator"] = dict(accelerator)
        if "resourceType" in accelerator and not _is_placeholder(accelerator["resourceType"]):
            spec["accelerator"]["type"] = accelerator["resourceType"]
        if "resourceCount" in accelerator and not _is_placeholder(accelerator["resourceCount"]):
            spec["accelerator"]["count"] = str(int(accelerator["resourceCount"]))
    return spec
