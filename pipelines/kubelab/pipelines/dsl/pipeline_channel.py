"""Pipeline channels: placeholders for values that exist only at run time.

Inside a `@dsl.pipeline` body, pipeline parameters, task outputs and loop items are
channels; the compiler turns each use into `componentInputParameter`,
`taskOutputParameter`, ... references.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.dsl import artifact_types
from kubelab.pipelines.dsl.types import PARAMETER_TYPE_NAMES

if TYPE_CHECKING:
    from kubelab.pipelines.dsl.pipeline_task import PipelineTask
    from kubelab.pipelines.dsl.tasks_group import ParallelFor


@dataclasses.dataclass(frozen=True, eq=False)
class ConditionOperation:
    """`left <op> right` recorded by comparing a channel inside a pipeline."""

    operator: str
    left: Any
    right: Any

    def channels(self) -> list[PipelineChannel]:
        return [v for v in (self.left, self.right) if isinstance(v, PipelineChannel)]

    def __bool__(self) -> bool:
        from kubelab.pipelines.errors import KubelabError

        raise KubelabError(
            f"A pipeline comparison ({self.operator}) is only decided at run time; use "
            "`with dsl.If(...)` instead of a Python `if` inside the pipeline function."
        )


class PipelineChannel:
    """A reference to a run-time value: a pipeline input, a task output or a loop item."""

    def __init__(
        self,
        name: str,
        *,
        task: PipelineTask | None = None,
        parameter_type: str | None = None,
        artifact_class: type[artifact_types.Artifact] | None = None,
        is_list: bool = False,
    ) -> None:
        self.name = name
        self.task = task
        self.parameter_type = parameter_type
        self.artifact_class = artifact_class
        self.is_list = is_list

    @property
    def is_artifact(self) -> bool:
        return self.artifact_class is not None

    @property
    def full_name(self) -> str:
        """Unique name within a pipeline: `task-output` or the parameter name."""
        return f"{self.task.name}-{self.name}" if self.task is not None else self.name

    @property
    def input_key(self) -> str:
        """The name KFP gives this channel as an input of a sub-DAG."""
        return f"pipelinechannel--{self.full_name}"

    def describe(self) -> str:
        where = (
            f"output '{self.name}' of task '{self.task.name}'"
            if self.task
            else (f"pipeline parameter '{self.name}'")
        )
        return f"{where} ({self.type_name()})"

    def type_name(self) -> str:
        if self.artifact_class is not None:
            inner = self.artifact_class.__name__
            return f"artifact {'List[' + inner + ']' if self.is_list else inner}"
        if self.parameter_type is None:
            return "parameter of run-time type"
        return f"parameter {PARAMETER_TYPE_NAMES.get(self.parameter_type, self.parameter_type)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.full_name!r}, {self.type_name()})"

    def __str__(self) -> str:
        # KFP's pattern; the compiler rejects constants that embed it (f-strings).
        task = self.task.name if self.task else ""
        return "{{channel:task=" + task + ";name=" + self.name + ";}}"

    def __bool__(self) -> bool:
        from kubelab.pipelines.errors import KubelabError

        raise KubelabError(
            f"{self.describe()} is only known at run time; use dsl.If(...) instead of a "
            "Python `if` inside the pipeline function.",
            channel=self.full_name,
        )

    __hash__ = object.__hash__

    def _compare(self, op: str, other: Any) -> ConditionOperation:
        return ConditionOperation(op, self, other)

    def __eq__(self, other: Any) -> ConditionOperation:  # type: ignore[override]
        return self._compare("==", other)

    def __ne__(self, other: Any) -> ConditionOperation:  # type: ignore[override]
        return self._compare("!=", other)

    def __lt__(self, other: Any) -> ConditionOperation:
        return self._compare("<", other)

    def __le__(self, other: Any) -> ConditionOperation:
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> ConditionOperation:
        return self._compare(">", other)

    def __ge__(self, other: Any) -> ConditionOperation:
        return self._compare(">=", other)


class LoopItem(PipelineChannel):
    """The current item of a `dsl.ParallelFor`."""

    def __init__(
        self,
        loop: ParallelFor,
        name: str,
        parameter_type: str | None,
        artifact_class: type[artifact_types.Artifact] | None = None,
    ) -> None:
        super().__init__(name, parameter_type=parameter_type, artifact_class=artifact_class)
        self.loop = loop

    @property
    def full_name(self) -> str:
        return self.name

    def __getattr__(self, field: str) -> LoopItemField:
        # Only called for missing attributes: `item.a` selects a field of a dict item.
        if field.startswith("_") or self.artifact_class is not None:
            raise AttributeError(field)
        return LoopItemField(self, field)


class LoopItemField(LoopItem):
    """`item.field` of a ParallelFor over dicts (KFP's parameterExpressionSelector)."""

    def __init__(self, item: LoopItem, field: str) -> None:
        super().__init__(item.loop, item.name, _field_type(item, field))
        self.item = item
        self.field = field

    @property
    def selector(self) -> str:
        return f'parseJson(string_value)["{self.field}"]'


def _field_type(item: LoopItem, field: str) -> str | None:
    """The field's type when every literal item agrees on it, else unknown (None)."""
    from kubelab.pipelines.dsl.types import constant_parameter_type

    raw = getattr(item.loop, "items", None)
    if not isinstance(raw, (list, tuple)) or not all(isinstance(v, dict) for v in raw):
        return None
    found = {constant_parameter_type(v.get(field)) for v in raw}
    return found.pop() if len(found) == 1 else None


class Collected(PipelineChannel):
    """All values of a task output produced inside a ParallelFor, as one list."""

    def __init__(self, output: PipelineChannel) -> None:
        if not isinstance(output, PipelineChannel) or output.task is None:
            from kubelab.pipelines.errors import KubelabError

            raise KubelabError(
                "dsl.Collected() takes a task output produced inside a dsl.ParallelFor, "
                f"got {output!r}."
            )
        from kubelab.pipelines.dsl.types import LIST

        super().__init__(
            output.name,
            task=output.task,
            parameter_type=None if output.is_artifact else LIST,
            artifact_class=output.artifact_class,
            is_list=True,
        )
        self.output = output
