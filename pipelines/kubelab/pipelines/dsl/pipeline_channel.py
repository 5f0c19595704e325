"""Pipeline channels: placeholders for values that exist only at run time.

Inside a `@dsl.pipeline` body, pipeline parameters, task outputs and loop items are
channels; the compiler turns each use into `componentInputParameter`,
`taskOutputParameter`, ... references.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.dsl import artifact_types
from kubelab.pipelines.dsl.types import PARAMETER_TYPE_NAMES

if TYPE_CHECKING:
    from kubelab.pipelines.dsl.pipeline_task import PipelineTask
    from kubelab.pipelines.dsl.tasks_group import ParallelFor
    from kubelab.pipelines.dsl.types import IOSpec

# What str() of a channel gives (KFP's pattern), found again in formatted constants.
CHANNEL_PATTERN_START = "{{channel:"
CHANNEL_PATTERN = re.compile(r"\{\{channel:task=[^;{}]*;name=[^;{}]*;\}\}")


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
        item_type: str | None = None,
        item_value_type: str | None = None,
    ) -> None:
        self.name = name
        self.task = task
        self.parameter_type = parameter_type
        self.artifact_class = artifact_class
        self.is_list = is_list
        # For lists: the elements' IR type (List[int] -> NUMBER_INTEGER), and for
        # lists of dicts the values' type (List[Dict[str, int]] -> NUMBER_INTEGER).
        self.item_type = item_type
        self.item_value_type = item_value_type

    @classmethod
    def from_spec(cls, spec: IOSpec, task: PipelineTask | None = None) -> PipelineChannel:
        """The channel of a component input (a pipeline parameter) or a task output."""
        return cls(
            spec.name,
            task=task,
            parameter_type=spec.parameter_type,
            artifact_class=spec.artifact_class,
            is_list=spec.is_list,
            item_type=spec.item_type,
            item_value_type=spec.item_value_type,
        )

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
        # KFP's pattern: a task finds it in a formatted constant (an f-string) and
        # reads the channel as an extra input, which the backend substitutes.
        from kubelab.pipelines.dsl.pipeline_context import Pipeline

        task = self.task.name if self.task else ""
        pattern = "{{channel:task=" + task + ";name=" + self.name + ";}}"
        pipeline = Pipeline.get_default_pipeline()
        if pipeline is not None:
            pipeline.formatted[pattern] = self
        return pattern

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
        field_type: str | None = None,
    ) -> None:
        super().__init__(name, parameter_type=parameter_type, artifact_class=artifact_class)
        self.loop = loop
        # KFP types every field of a dict item alike (the first value's type).
        self.field_type = field_type

    @property
    def full_name(self) -> str:
        return self.name

    def __getattr__(self, field: str) -> LoopItemField:
        # Only called for missing attributes: `item.a` selects a field of a dict item.
        if field.startswith("_") or self.artifact_class is not None:
            raise AttributeError(field)
        return LoopItemField(self, field)


class LoopItemField(LoopItem):
    """`item.field` of a ParallelFor over dicts (KFP's `-subvar-` channel).

    A task reads it from the item with a `parameterExpressionSelector`; a condition or a
    nested loop on it gets it as an input of its own, `pipelinechannel--<item>-subvar-<f>`.
    """

    def __init__(self, item: LoopItem, field: str) -> None:
        if not _FIELD_NAME.match(field):
            from kubelab.pipelines.errors import KubelabError

            raise KubelabError(
                f"Loop item field {field!r} is not a Python identifier; KFP selects "
                "fields of dict items as item.<name>.",
                field=field,
            )
        from kubelab.pipelines.dsl.types import STRING

        super().__init__(item.loop, f"{item.name}-subvar-{field}", item.field_type or STRING)
        self.item = item
        self.field = field

    @property
    def selector(self) -> str:
        return f'parseJson(string_value)["{self.field}"]'


_FIELD_NAME = re.compile(r"^[a-zA-Z_][0-9a-zA-Z_]*$")


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
