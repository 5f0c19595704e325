"""`@dsl.container_component` and `dsl.ContainerSpec`: components that run a command.

The function is called once at definition time with placeholders in place of
its parameters; the ContainerSpec it returns becomes the executor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from kubelab.pipelines.dsl import placeholders as ph
from kubelab.pipelines.dsl.base_component import (
    BaseComponent,
    describe_from_docstring,
    interface_from_function,
)
from kubelab.pipelines.errors import KubelabError


@dataclasses.dataclass
class ContainerSpec:
    """Image, command and args of a container component."""

    image: str
    command: list[Any] | None = None
    args: list[Any] | None = None


def _render(component: str, field: str, items: list[Any] | None) -> list[str]:
    rendered: list[str] = []
    for item in items or []:
        if isinstance(item, (str, ph.Placeholder, int, float)) and not isinstance(item, bool):
            rendered.append(str(item))
        else:
            raise KubelabError(
                f"Container component '{component}': {field} items must be strings or "
                f"placeholders, got {item!r}.",
                component=component,
            )
    return rendered


class ContainerComponent(BaseComponent):
    """A component that runs a fixed container command."""

    def __init__(self, func: Callable) -> None:
        name = func.__name__
        inputs, outputs = interface_from_function(func, name, returns_outputs=False)
        super().__init__(name, inputs, outputs, describe_from_docstring(func, inputs, outputs))
        self.python_func = func
        kwargs: dict[str, Any] = {}
        for spec in inputs.values():
            if spec.is_artifact and spec.passing == "object":
                kwargs[spec.name] = ph.ArtifactPlaceholders(spec.name, output=False)
            elif spec.is_artifact:
                kwargs[spec.name] = ph.InputPathPlaceholder(spec.name)
            else:
                kwargs[spec.name] = ph.InputValuePlaceholder(spec.name)
        for spec in outputs.values():
            if spec.is_artifact and spec.passing == "object":
                kwargs[spec.name] = ph.ArtifactPlaceholders(spec.name, output=True)
            elif spec.is_artifact:
                kwargs[spec.name] = ph.OutputPathPlaceholder(spec.name)
            elif spec.passing == "path":
                kwargs[spec.name] = ph.OutputParameterPlaceholder(spec.name)
            else:
                raise KubelabError(
                    f"Container component '{name}' cannot return values; declare outputs "
                    "as OutputPath(...) or Output[...] parameters.",
                    component=name,
                )
        spec = func(**kwargs)
        if not isinstance(spec, ContainerSpec):
            raise KubelabError(
                f"Container component '{name}' must return dsl.ContainerSpec(...), "
                f"got {type(spec).__name__}.",
                component=name,
            )
        if not isinstance(spec.image, str) or not spec.image:
            raise KubelabError(
                f"Container component '{name}': ContainerSpec.image must be a non-empty string.",
                component=name,
            )
        self.container = {
            "image": spec.image,
            "command": _render(name, "command", spec.command),
            "args": _render(name, "args", spec.args),
        }

    def executor_spec(self) -> dict[str, Any]:
        container = {"image": self.container["image"]}
        for key in ("command", "args"):
            if self.container[key]:
                container[key] = list(self.container[key])
        return {"container": container}


def container_component(func: Callable) -> ContainerComponent:
    """Decorator for a function returning dsl.ContainerSpec."""
    return ContainerComponent(func)
