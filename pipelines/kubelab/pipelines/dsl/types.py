"""Component interface types: Python annotations → KFP IR parameter/artifact types.

One place decides what `x: int`, `Input[List[Model]]` or `OutputPath("Dataset")`
means, so the decorator, the compiler and the executor never disagree.
"""

from __future__ import annotations

import dataclasses
import types as pytypes
import typing
from typing import Any, Literal

from kubelab.pipelines.dsl import artifact_types
from kubelab.pipelines.dsl.task_final_status import PipelineTaskFinalStatus
from kubelab.pipelines.dsl.type_annotations import (
    InputAnnotation,
    InputPath,
    OutputAnnotation,
    OutputPath,
)
from kubelab.pipelines.errors import KubelabError

STRING = "STRING"
NUMBER_INTEGER = "NUMBER_INTEGER"
NUMBER_DOUBLE = "NUMBER_DOUBLE"
BOOLEAN = "BOOLEAN"
LIST = "LIST"
STRUCT = "STRUCT"
TASK_FINAL_STATUS = "TASK_FINAL_STATUS"

_PYTHON_TO_PARAMETER: dict[Any, str] = {
    str: STRING,
    int: NUMBER_INTEGER,
    float: NUMBER_DOUBLE,
    bool: BOOLEAN,
    list: LIST,
    dict: STRUCT,
}
# String spellings KFP v1/v2 accept for parameter types.
_NAME_TO_PARAMETER: dict[str, str] = {
    "str": STRING,
    "string": STRING,
    "text": STRING,
    "int": NUMBER_INTEGER,
    "integer": NUMBER_INTEGER,
    "float": NUMBER_DOUBLE,
    "double": NUMBER_DOUBLE,
    "bool": BOOLEAN,
    "boolean": BOOLEAN,
    "list": LIST,
    "jsonarray": LIST,
    "dict": STRUCT,
    "jsonobject": STRUCT,
}

# Human names used in error messages.
PARAMETER_TYPE_NAMES = {
    STRING: "str",
    NUMBER_INTEGER: "int",
    NUMBER_DOUBLE: "float",
    BOOLEAN: "bool",
    LIST: "list",
    STRUCT: "dict",
    TASK_FINAL_STATUS: "PipelineTaskFinalStatus",
}

_NO_DEFAULT = object()
NO_DEFAULT: Any = _NO_DEFAULT

Passing = Literal["value", "path", "object"]


@dataclasses.dataclass
class IOSpec:
    """One input or output of a component interface."""

    name: str
    parameter_type: str | None = None
    artifact_class: type[artifact_types.Artifact] | None = None
    is_list: bool = False
    passing: Passing = "value"
    default: Any = _NO_DEFAULT
    optional: bool = False
    description: str | None = None
    # Lists: the elements' type, and for lists of dicts the values' type (loop items).
    item_type: str | None = None
    item_value_type: str | None = None

    @property
    def is_artifact(self) -> bool:
        return self.artifact_class is not None

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    @property
    def required(self) -> bool:
        return not (self.optional or self.has_default or self.parameter_type == TASK_FINAL_STATUS)

    def type_name(self) -> str:
        """Readable type for error messages, e.g. `Input[Model]` or `int`."""
        if self.artifact_class is not None:
            inner = self.artifact_class.__name__
            return f"artifact {'List[' + inner + ']' if self.is_list else inner}"
        return f"parameter {PARAMETER_TYPE_NAMES.get(self.parameter_type or '', '?')}"

    def to_ir(self) -> dict[str, Any]:
        """ComponentInputsSpec/ComponentOutputsSpec entry."""
        if self.artifact_class is not None:
            spec: dict[str, Any] = {"artifactType": artifact_type_schema(self.artifact_class)}
            if self.is_list:
                spec["isArtifactList"] = True
            if self.optional or self.has_default:
                spec["isOptional"] = True
        else:
            spec = {"parameterType": self.parameter_type}
            if self.has_default and self.default is not None:
                spec["defaultValue"] = self.default
            if self.optional or self.has_default or self.parameter_type == TASK_FINAL_STATUS:
                spec["isOptional"] = True
        if self.description:
            spec["description"] = self.description
        return spec


def artifact_type_schema(cls: type[artifact_types.Artifact]) -> dict[str, str]:
    return {"schemaTitle": cls.schema_title, "schemaVersion": cls.schema_version}


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, pytypes.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def parameter_type_of(annotation: Any) -> str | None:
    """IR parameter type for a Python annotation, or None when it is not a parameter."""
    if isinstance(annotation, str):
        return _NAME_TO_PARAMETER.get(annotation.lower())
    if annotation in _PYTHON_TO_PARAMETER:
        return _PYTHON_TO_PARAMETER[annotation]
    if annotation is PipelineTaskFinalStatus:
        return TASK_FINAL_STATUS
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, typing.List):  # noqa: UP006 - typing.List origin is list anyway
        return LIST
    if origin is dict:
        return STRUCT
    return None


def element_types(annotation: Any) -> tuple[str | None, str | None]:
    """(item type, dict value type) of `List[X]` as KFP reads them for loop items.

    `List[int]` gives NUMBER_INTEGER; `List[Dict[str, int]]` gives STRUCT, and its
    items' fields NUMBER_INTEGER; a bare `list` gives (None, None).
    """
    annotation, _ = _strip_optional(annotation)
    if typing.get_origin(annotation) not in (list, tuple):
        return None, None
    args = typing.get_args(annotation)
    if not args:
        return None, None
    item = args[0]
    value_type = None
    if typing.get_origin(item) is dict and len(typing.get_args(item)) == 2:
        value_type = parameter_type_of(typing.get_args(item)[1])
    return parameter_type_of(item), value_type


def _artifact_class_of(annotation: Any) -> tuple[type[artifact_types.Artifact] | None, bool]:
    """(artifact class, is_list) for `Dataset`, `List[Model]`, `"Dataset"`, else (None, False)."""
    if artifact_types.is_artifact_class(annotation):
        return annotation, False
    if isinstance(annotation, str):
        return artifact_types.class_for_name(annotation), False
    if typing.get_origin(annotation) is list:
        (inner,) = typing.get_args(annotation) or (None,)
        if artifact_types.is_artifact_class(inner):
            return inner, True
    return None, False


def io_spec_from_annotation(
    component: str, name: str, annotation: Any, default: Any = _NO_DEFAULT
) -> tuple[Literal["input", "output"], IOSpec]:
    """Classify one function parameter of a component."""
    annotation, optional = _strip_optional(annotation)
    if default is None:
        optional = True
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *marks = typing.get_args(annotation)
        inner, inner_optional = _strip_optional(inner)
        optional = optional or inner_optional
        cls, is_list = _artifact_class_of(inner)
        if cls is None:
            raise KubelabError(
                f"Component '{component}': parameter '{name}' uses Input[]/Output[] with "
                f"{inner!r}, which is not an artifact class (Artifact, Dataset, Model, ...).",
                component=component,
                parameter=name,
            )
        if OutputAnnotation in marks:
            return "output", IOSpec(name, artifact_class=cls, is_list=is_list, passing="object")
        if InputAnnotation in marks:
            return "input", IOSpec(
                name,
                artifact_class=cls,
                is_list=is_list,
                passing="object",
                optional=optional,
                default=default if default is not None else _NO_DEFAULT,
            )
    if isinstance(annotation, (InputPath, OutputPath)):
        direction: Literal["input", "output"] = (
            "output" if isinstance(annotation, OutputPath) else "input"
        )
        ptype = parameter_type_of(annotation.type) if annotation.type is not None else None
        if ptype is not None:
            spec = IOSpec(name, parameter_type=ptype, passing="path")
        else:
            cls, is_list = _artifact_class_of(annotation.type)
            spec = IOSpec(
                name, artifact_class=cls or artifact_types.Artifact, is_list=is_list, passing="path"
            )
        if direction == "input":
            spec.optional = optional
        return direction, spec
    cls, is_list = _artifact_class_of(annotation)
    if cls is not None and not isinstance(annotation, str):
        return "input", IOSpec(
            name, artifact_class=cls, is_list=is_list, passing="object", optional=optional
        )
    ptype = parameter_type_of(annotation)
    if ptype is None:
        raise KubelabError(
            f"Component '{component}': parameter '{name}' has unsupported type {annotation!r}; "
            "use str, int, float, bool, list, dict, Input[...]/Output[...] of an artifact "
            "class, InputPath or OutputPath.",
            component=component,
            parameter=name,
        )
    if default is not _NO_DEFAULT and default is not None:
        check_constant(component, name, ptype, default)
        default = normalise_constant(ptype, default)
    item_type, item_value_type = element_types(annotation)
    return "input", IOSpec(
        name,
        parameter_type=ptype,
        default=default,
        optional=optional,
        item_type=item_type,
        item_value_type=item_value_type,
    )


def output_specs_from_return(component: str, annotation: Any) -> list[IOSpec]:
    """Outputs declared by a return annotation (single value or NamedTuple)."""
    if annotation in (None, type(None), typing.Any):
        return []
    fields = getattr(annotation, "_fields", None)
    if fields is not None and hasattr(annotation, "__annotations__"):
        hints = typing.get_type_hints(annotation)
        return [_single_output(component, f, hints.get(f, str)) for f in fields]
    return [_single_output(component, "Output", annotation)]


def _single_output(component: str, name: str, annotation: Any) -> IOSpec:
    cls, is_list = _artifact_class_of(annotation)
    if cls is not None and not isinstance(annotation, str):
        return IOSpec(name, artifact_class=cls, is_list=is_list, passing="value")
    ptype = parameter_type_of(annotation)
    if ptype is None or ptype == TASK_FINAL_STATUS:
        raise KubelabError(
            f"Component '{component}': output '{name}' has unsupported type {annotation!r}.",
            component=component,
            output=name,
        )
    item_type, item_value_type = element_types(annotation)
    return IOSpec(name, parameter_type=ptype, item_type=item_type, item_value_type=item_value_type)


def constant_parameter_type(value: Any) -> str | None:
    """IR parameter type of a Python constant (bool before int: bool is an int)."""
    for py, ptype in ((bool, BOOLEAN), (int, NUMBER_INTEGER), (float, NUMBER_DOUBLE)):
        if isinstance(value, py):
            return ptype
    if isinstance(value, str):
        return STRING
    if isinstance(value, (list, tuple)):
        return LIST
    if isinstance(value, dict):
        return STRUCT
    return None


def parameter_types_compatible(given: str | None, expected: str | None) -> bool:
    """Whether a value of type `given` may feed an input of type `expected`.

    None means "unknown" (e.g. a loop item over a runtime list) and is accepted,
    as KFP does; an int may feed a float, nothing else converts.
    """
    if given is None or expected is None or given == expected:
        return True
    # A PipelineTaskFinalStatus is a dict at run time, which KFP lets a dict input read.
    return (given, expected) in ((NUMBER_INTEGER, NUMBER_DOUBLE), (TASK_FINAL_STATUS, STRUCT))


def check_constant(component: str, name: str, expected: str, value: Any) -> None:
    given = constant_parameter_type(value)
    if given is None or not parameter_types_compatible(given, expected):
        raise KubelabError(
            f"Component '{component}': input '{name}' expects "
            f"{PARAMETER_TYPE_NAMES.get(expected, expected)} but got "
            f"{type(value).__name__} value {value!r}.",
            component=component,
            input=name,
        )


def normalise_constant(ptype: str, value: Any) -> Any:
    """JSON-compatible constant as the IR stores it."""
    if ptype == NUMBER_DOUBLE and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, tuple):
        return list(value)
    return value
