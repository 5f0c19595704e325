"""Placeholders for container components: strings the backend fills in at run time.

They render exactly as KFP's (`{{$.inputs.parameters['x']}}`, `{"Concat": [...]}`),
and `str()` of a placeholder is its rendering, so f-strings work.
"""

from __future__ import annotations

import json
from typing import Any


class Placeholder:
    """Base of all run-time placeholders."""

    def render(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.render()!r})"


class ExecutorInputPlaceholder(Placeholder):
    def render(self) -> str:
        return "{{$}}"


class InputValuePlaceholder(Placeholder):
    def __init__(self, input_name: str) -> None:
        self.input_name = input_name

    def render(self) -> str:
        return f"{{{{$.inputs.parameters['{self.input_name}']}}}}"


class InputPathPlaceholder(Placeholder):
    def __init__(self, input_name: str) -> None:
        self.input_name = input_name

    def render(self) -> str:
        return f"{{{{$.inputs.artifacts['{self.input_name}'].path}}}}"


class InputUriPlaceholder(Placeholder):
    def __init__(self, input_name: str) -> None:
        self.input_name = input_name

    def render(self) -> str:
        return f"{{{{$.inputs.artifacts['{self.input_name}'].uri}}}}"


class InputMetadataPlaceholder(Placeholder):
    def __init__(self, input_name: str) -> None:
        self.input_name = input_name

    def render(self) -> str:
        return f"{{{{$.inputs.artifacts['{self.input_name}'].metadata}}}}"


class OutputParameterPlaceholder(Placeholder):
    def __init__(self, output_name: str) -> None:
        self.output_name = output_name

    def render(self) -> str:
        return f"{{{{$.outputs.parameters['{self.output_name}'].output_file}}}}"


class OutputPathPlaceholder(Placeholder):
    def __init__(self, output_name: str) -> None:
        self.output_name = output_name

    def render(self) -> str:
        return f"{{{{$.outputs.artifacts['{self.output_name}'].path}}}}"


class OutputUriPlaceholder(Placeholder):
    def __init__(self, output_name: str) -> None:
        self.output_name = output_name

    def render(self) -> str:
        return f"{{{{$.outputs.artifacts['{self.output_name}'].uri}}}}"


class OutputMetadataPlaceholder(Placeholder):
    def __init__(self, output_name: str) -> None:
        self.output_name = output_name

    def render(self) -> str:
        return f"{{{{$.outputs.artifacts['{self.output_name}'].metadata}}}}"


def _to_json_item(item: Any) -> Any:
    if isinstance(item, (ConcatPlaceholder, IfPresentPlaceholder)):
        return item.to_json()
    return str(item)


class ConcatPlaceholder(Placeholder):
    """Joins strings and placeholders into one argument."""

    def __init__(self, items: list[Any]) -> None:
        self.items = list(items)

    def to_json(self) -> dict[str, Any]:
        return {"Concat": [_to_json_item(i) for i in self.items]}

    def render(self) -> str:
        return json.dumps(self.to_json())


class IfPresentPlaceholder(Placeholder):
    """Arguments used only when an optional input was given."""

    def __init__(
        self,
        input_name: str,
        then: Any,
        else_: Any = None,
    ) -> None:
        self.input_name = input_name
        self.then = then
        self.else_ = else_

    @staticmethod
    def _branch(value: Any) -> Any:
        if isinstance(value, list):
            return [_to_json_item(v) for v in value]
        return _to_json_item(value)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"InputName": self.input_name, "Then": self._branch(self.then)}
        if self.else_ is not None:
            body["Else"] = self._branch(self.else_)
        return {"IfPresent": body}

    def render(self) -> str:
        return json.dumps(self.to_json())


class ArtifactPlaceholders(Placeholder):
    """What a container component sees for an `Input[...]`/`Output[...]` parameter.

    Used whole (e.g. a list of artifacts as an argument) it is the artifact's JSON.
    """

    def __init__(self, name: str, output: bool) -> None:
        self._name = name
        self._output = output

    def render(self) -> str:
        side = "outputs" if self._output else "inputs"
        return f"{{{{$.{side}.artifacts['{self._name}']}}}}"

    @property
    def path(self) -> Placeholder:
        return (
            OutputPathPlaceholder(self._name) if self._output else InputPathPlaceholder(self._name)
        )

    @property
    def uri(self) -> Placeholder:
        return OutputUriPlaceholder(self._name) if self._output else InputUriPlaceholder(self._name)

    @property
    def metadata(self) -> Placeholder:
        if self._output:
            return OutputMetadataPlaceholder(self._name)
        return InputMetadataPlaceholder(self._name)


def render(item: str | Placeholder) -> str:
    """A command-line element as the IR writes it."""
    return item if isinstance(item, str) else item.render()
