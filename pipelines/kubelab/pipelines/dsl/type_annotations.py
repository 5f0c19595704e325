"""`Input[...]`, `Output[...]`, `InputPath`, `OutputPath` — how a component
parameter is passed (by value, as an artifact object, or as a file path)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

T = TypeVar("T")


class InputAnnotation:
    """Marks `Input[T]`: an artifact object the component reads."""


class OutputAnnotation:
    """Marks `Output[T]`: an artifact object the component writes."""


class EmbeddedAnnotation:
    """Marks `EmbeddedInput[T]`: the file or directory shipped inside the component
    (`@dsl.component(embedded_artifact_path=...)`); not an input of the interface."""


Input = Annotated[T, InputAnnotation]
Output = Annotated[T, OutputAnnotation]
EmbeddedInput = Annotated[T, EmbeddedAnnotation]


def is_embedded(annotation: Any) -> bool:
    return EmbeddedAnnotation in getattr(annotation, "__metadata__", ())


class InputPath:
    """A parameter received as the local path of an input artifact (or value file)."""

    def __init__(self, type: Any = None) -> None:
        self.type = type

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InputPath) and other.type == self.type

    def __hash__(self) -> int:
        return hash(("InputPath", repr(self.type)))

    def __repr__(self) -> str:
        return f"InputPath({self.type!r})"


class OutputPath:
    """A parameter received as the local path where the component writes an output."""

    def __init__(self, type: Any = None) -> None:
        self.type = type

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputPath) and other.type == self.type

    def __hash__(self) -> int:
        return hash(("OutputPath", repr(self.type)))

    def __repr__(self) -> str:
        return f"OutputPath({self.type!r})"
