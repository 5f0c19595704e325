"""`BaseComponent`: the callable every decorator returns.

Inside a pipeline a call records a PipelineTask; outside one it runs the
component now on the local engine, as `kfp.local` does.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from kubelab.pipelines.dsl import types
from kubelab.pipelines.dsl.type_annotations import is_embedded
from kubelab.pipelines.errors import KubelabError


class BaseComponent:
    """A component interface: named, typed inputs and outputs."""

    # Whether tasks of this component run a container (resources/env apply).
    runs_in_container = True

    def __init__(
        self,
        name: str,
        inputs: dict[str, types.IOSpec],
        outputs: dict[str, types.IOSpec],
        description: str | None = None,
    ) -> None:
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.description = description

    @property
    def component_spec(self) -> BaseComponent:
        """KFP exposes the interface as `component_spec`; here it is the component itself."""
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from kubelab.pipelines.dsl.pipeline_context import Pipeline
        from kubelab.pipelines.dsl.pipeline_task import PipelineTask

        if args:
            raise KubelabError(
                f"Component '{self.name}' must be called with keyword arguments, "
                f"e.g. {self.name}({', '.join(f'{n}=...' for n in self.inputs)}).",
                component=self.name,
            )
        if Pipeline.get_default_pipeline() is None:
            return execute_outside_pipeline(self, kwargs)
        return PipelineTask(self, kwargs)

    def executor_spec(self) -> dict[str, Any] | None:
        """The deploymentSpec executor body, or None for a DAG."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def execute_outside_pipeline(component: BaseComponent, arguments: dict[str, Any]) -> Any:
    """Run a component call made outside any pipeline on the local engine."""
    try:
        from kubelab.pipelines.local import execute_outside_pipeline as run_locally
    except ModuleNotFoundError as error:
        if error.name != "kubelab.pipelines.local":
            raise
        raise KubelabError(
            f"Calling component '{component.name}' outside a pipeline runs it locally: "
            "call `from kubelab.pipelines import local; local.init()` first "
            "(the local engine is not available in this installation).",
            component=component.name,
        ) from None
    return run_locally(component, arguments)


def interface_from_function(
    func: Callable, component_name: str, returns_outputs: bool = True
) -> tuple[dict[str, types.IOSpec], dict[str, types.IOSpec]]:
    """Inputs and outputs declared by a function's signature and annotations.

    A container component's return annotation (`-> dsl.ContainerSpec`) declares no
    output: pass `returns_outputs=False`.
    """
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as error:  # unresolvable forward references
        raise KubelabError(
            f"Component '{component_name}': cannot resolve type annotations ({error}).",
            component=component_name,
        ) from error
    inputs: dict[str, types.IOSpec] = {}
    outputs: dict[str, types.IOSpec] = {}
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise KubelabError(
                f"Component '{component_name}': *args/**kwargs are not supported ('{param.name}').",
                component=component_name,
                parameter=param.name,
            )
        if param.name not in hints:
            raise KubelabError(
                f"Component '{component_name}': parameter '{param.name}' needs a type annotation.",
                component=component_name,
                parameter=param.name,
            )
        if is_embedded(hints[param.name]):
            continue  # filled at run time from the component's embedded archive
        default = types.NO_DEFAULT if param.default is param.empty else param.default
        direction, spec = types.io_spec_from_annotation(
            component_name, param.name, hints[param.name], default
        )
        (outputs if direction == "output" else inputs)[param.name] = spec
    returned = hints.get("return") if returns_outputs else None
    for spec in types.output_specs_from_return(component_name, returned):
        if spec.name in outputs:
            raise KubelabError(
                f"Component '{component_name}': output '{spec.name}' is declared twice.",
                component=component_name,
                output=spec.name,
            )
        outputs[spec.name] = spec
    return inputs, outputs


def describe_from_docstring(
    func: Callable,
    inputs: dict[str, types.IOSpec],
    outputs: dict[str, types.IOSpec],
) -> str | None:
    """KFP's docstring handling: Args/Returns → parameter descriptions; returns the
    short + long description (used as the pipeline description).

    Needs `docstring_parser` at definition time only; the run-time executor never
    calls this, so components still run on the standard library alone.
    """
    doc = inspect.getdoc(func)
    if not doc:
        return None
    try:
        import docstring_parser
    except ImportError:  # a slim runtime image: descriptions are cosmetic
        return doc.strip().split("\n\n")[0]
    parsed = docstring_parser.parse(doc)

    def assign(specs: dict[str, types.IOSpec], params: list) -> None:
        by_name = {p.arg_name: p for p in params}
        for name, spec in specs.items():
            if name in by_name and by_name[name].description:
                spec.description = by_name[name].description

    assign(inputs, parsed.params)
    for keyword in ("Returns:\n", "Returns\n", "Return:\n", "Return\n"):
        if keyword in doc:
            assign(outputs, docstring_parser.parse(doc.replace(keyword.strip(), "Args:")).params)
            break
    short, long = parsed.short_description, parsed.long_description
    text = f"{short}\n{long}" if short and long else short
    return text.strip() if text else None
