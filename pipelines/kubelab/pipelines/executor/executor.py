"""Component-side runtime: run one Python component function from KFP's executor input.

Pure of any engine: given KFP's ExecutorInput JSON it builds the function's
arguments (values, artifact objects, paths), calls it, and writes the outputs
the way KFP's launcher expects (parameter files and the ExecutorOutput JSON).
"""

from __future__ import annotations

import json
import os
import tempfile
import types as pytypes
import typing
from collections.abc import Callable
from typing import Any

from kubelab.pipelines.dsl import artifact_types
from kubelab.pipelines.dsl import types as dsl_types
from kubelab.pipelines.dsl.base_component import interface_from_function
from kubelab.pipelines.dsl.python_component import EMBEDDED_PATH_GLOBAL
from kubelab.pipelines.dsl.task_final_status import PipelineTaskFinalStatus
from kubelab.pipelines.dsl.type_annotations import is_embedded
from kubelab.pipelines.errors import KubelabError


def load_function(component_source: str, function_name: str, filename: str) -> Callable:
    """Execute the component module source and return the named function."""
    module = pytypes.ModuleType("ephemeral_component")
    module.__file__ = filename
    code = compile(component_source, filename, "exec")
    exec(code, module.__dict__)
    func = module.__dict__.get(function_name)
    if not callable(func):
        raise KubelabError(
            f"The component module defines no function '{function_name}'.",
            function=function_name,
        )
    # The dsl decorator may have wrapped it when the source kept its decorator.
    return getattr(func, "python_func", func)


def _runtime_artifact(
    raw: dict[str, Any], cls: type[artifact_types.Artifact] | None
) -> artifact_types.Artifact:
    schema = (raw.get("type") or {}).get("schemaTitle")
    if schema:
        runtime_cls = artifact_types.class_for_schema_title(schema)
        # Keep the annotated class when the runtime one is only the generic Artifact.
        if cls is None or runtime_cls is not artifact_types.Artifact:
            cls = runtime_cls
    cls = cls or artifact_types.Artifact
    return cls(
        name=raw.get("name", ""), uri=raw.get("uri", ""), metadata=dict(raw.get("metadata") or {})
    )


def _restore_ints(value: Any) -> Any:
    """Integral doubles back to ints inside lists/dicts.

    Protobuf's Value stores every number as a double, so `{"digits": 2}` arrives as
    `{"digits": 2.0}`; Python code (range, round, indexing) expects the int back.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_restore_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _restore_ints(v) for k, v in value.items()}
    return value


def _convert_parameter(name: str, ptype: str | None, value: Any) -> Any:
    """Protobuf Values carry every number as a double; restore the declared type."""
    if value is None:
        return None
    try:
        if ptype == dsl_types.NUMBER_INTEGER:
            if isinstance(value, str):
                return int(value)
            if float(value) != int(value):
                raise ValueError(value)
            return int(value)
        if ptype == dsl_types.NUMBER_DOUBLE:
            return float(value)
        if ptype == dsl_types.BOOLEAN and isinstance(value, str):
            return value.strip().lower() == "true"
        if ptype in (dsl_types.LIST, dsl_types.STRUCT):
            return _restore_ints(json.loads(value) if isinstance(value, str) else value)
        if ptype == dsl_types.STRING and not isinstance(value, str):
            return json.dumps(value)
    except (TypeError, ValueError) as error:
        raise KubelabError(
            f"Input '{name}' expects {dsl_types.PARAMETER_TYPE_NAMES.get(ptype or '', ptype)}, "
            f"got {value!r}.",
            input=name,
        ) from error
    return value


def _parse_output_file(ptype: str | None, text: str) -> Any:
    if ptype == dsl_types.STRING:
        return text
    if ptype == dsl_types.BOOLEAN:
        return text.strip().lower() == "true"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return _convert_parameter("output", ptype, value)


def _serialise_parameter(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _check_output(name: str, ptype: str | None, value: Any) -> Any:
    expected = {
        dsl_types.STRING: (str,),
        dsl_types.NUMBER_INTEGER: (int,),
        dsl_types.NUMBER_DOUBLE: (int, float),
        dsl_types.BOOLEAN: (bool,),
        dsl_types.LIST: (list, tuple),
        dsl_types.STRUCT: (dict,),
    }.get(ptype or "")
    if expected and not isinstance(value, expected):
        raise KubelabError(
            f"Output '{name}' should be {dsl_types.PARAMETER_TYPE_NAMES.get(ptype or '', ptype)} "
            f"but the function returned {type(value).__name__} {value!r}.",
            output=name,
        )
    if ptype == dsl_types.NUMBER_DOUBLE:
        return float(value)
    if isinstance(value, tuple):
        return list(value)
    return value


class Executor:
    """Runs one component function against one ExecutorInput."""

    def __init__(self, executor_input: dict[str, Any], func: Callable) -> None:
        self.executor_input = executor_input
        self.func = func
        self.inputs_spec, self.outputs_spec = interface_from_function(func, func.__name__)
        # Artifacts the function returns (KFP's "pythonic" artifacts), by output name.
        self.returned_artifacts: dict[str, list[artifact_types.Artifact]] = {}
        inputs = executor_input.get("inputs") or {}
        outputs = executor_input.get("outputs") or {}
        self.parameter_values: dict[str, Any] = inputs.get("parameterValues") or {}
        self.input_artifacts: dict[str, Any] = inputs.get("artifacts") or {}
        self.output_parameters: dict[str, Any] = outputs.get("parameters") or {}
        self.output_artifacts_raw: dict[str, Any] = outputs.get("artifacts") or {}
        self.output_file: str | None = outputs.get("outputFile")
        self.output_artifacts: dict[str, artifact_types.Artifact] = {}
        self._path_outputs: dict[str, str] = {}
        # dsl.get_uri() names files under the task's own directory, as in KFP.
        artifact_types.CONTAINER_TASK_ROOT = (
            os.path.dirname(self.output_file) if self.output_file else None
        )

    # ---------------------------------------------------------------- inputs
    def _input_artifacts(self, spec: dsl_types.IOSpec) -> list[artifact_types.Artifact]:
        entry = self.input_artifacts.get(spec.name) or {}
        return [_runtime_artifact(raw, spec.artifact_class) for raw in entry.get("artifacts", [])]

    def _output_parameter_path(self, name: str) -> str:
        entry = self.output_parameters.get(name) or {}
        path = entry.get("outputFile")
        if not path:
            path = os.path.join(tempfile.mkdtemp(prefix="kubelab-out-"), name)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return path

    def _output_artifact(self, spec: dsl_types.IOSpec) -> artifact_types.Artifact:
        entry = self.output_artifacts_raw.get(spec.name) or {}
        raws = entry.get("artifacts") or []
        if not raws:
            raise KubelabError(
                f"Executor input has no location for output artifact '{spec.name}'.",
                output=spec.name,
            )
        artifact = _runtime_artifact(raws[0], spec.artifact_class)
        if spec.artifact_class is not None and not isinstance(artifact, spec.artifact_class):
            artifact = spec.artifact_class(artifact.name, artifact.uri, artifact.metadata)
        if artifact.path:
            os.makedirs(os.path.dirname(artifact.path) or ".", exist_ok=True)
        self.output_artifacts[spec.name] = artifact
        return artifact

    def _embedded_arguments(self) -> dict[str, Any]:
        """`dsl.EmbeddedInput[T]` parameters: the archive the component module carries."""
        hints = typing.get_type_hints(self.func, include_extras=True)
        found: dict[str, Any] = {}
        for name, annotation in hints.items():
            if name != "return" and is_embedded(annotation):
                path = self.func.__globals__.get(EMBEDDED_PATH_GLOBAL)
                if path is None:
                    raise KubelabError(
                        f"Input '{name}' is a dsl.EmbeddedInput but the component has no "
                        "embedded_artifact_path.",
                        input=name,
                    )
                cls = typing.get_args(annotation)[0]
                cls = cls if artifact_types.is_artifact_class(cls) else artifact_types.Artifact
                found[name] = cls(name=name, uri=path)
        return found

    def build_arguments(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = self._embedded_arguments()
        for name, spec in self.inputs_spec.items():
            if spec.is_artifact:
                artifacts = self._input_artifacts(spec)
                if not artifacts:
                    if spec.is_list:
                        kwargs[name] = []
                    elif spec.optional or spec.has_default:
                        continue
                    else:
                        raise KubelabError(f"Missing input artifact '{name}'.", input=name)
                elif spec.is_list:
                    kwargs[name] = (
                        artifacts if spec.passing == "object" else [a.path for a in artifacts]
                    )
                else:
                    kwargs[name] = artifacts[0] if spec.passing == "object" else artifacts[0].path
                continue
            if spec.parameter_type == dsl_types.TASK_FINAL_STATUS:
                raw = self.parameter_values.get(name)
                if isinstance(raw, str):
                    raw = json.loads(raw)
                kwargs[name] = PipelineTaskFinalStatus.from_runtime(raw or {})
                continue
            if name not in self.parameter_values:
                if spec.required:
                    raise KubelabError(f"Missing input parameter '{name}'.", input=name)
                continue
            value = _convert_parameter(name, spec.parameter_type, self.parameter_values[name])
            if spec.passing == "path":
                directory = tempfile.mkdtemp(prefix="kubelab-in-")
                path = os.path.join(directory, name)
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(_serialise_parameter(value))
                value = path
            kwargs[name] = value
        for name, spec in self.outputs_spec.items():
            if spec.passing == "object":
                kwargs[name] = self._output_artifact(spec)
            elif spec.passing == "path":
                if spec.is_artifact:
                    kwargs[name] = self._output_artifact(spec).path
                else:
                    path = self._output_parameter_path(name)
                    self._path_outputs[name] = path
                    kwargs[name] = path
        return kwargs

    # --------------------------------------------------------------- outputs
    def _returned_values(self, result: Any) -> dict[str, Any]:
        returned = [s for s in self.outputs_spec.values() if s.passing == "value"]
        if not returned:
            return {}
        if len(returned) == 1 and returned[0].name == "Output":
            return {"Output": result}
        if not isinstance(result, tuple) or len(result) != len(returned):
            raise KubelabError(
                f"Function '{self.func.__name__}' must return a tuple of "
                f"{', '.join(s.name for s in returned)}; got {result!r}.",
                function=self.func.__name__,
            )
        fields = getattr(result, "_fields", None)
        if fields:
            return {f: getattr(result, f) for f in fields}
        return {s.name: v for s, v in zip(returned, result, strict=True)}

    @staticmethod
    def _check_returned_artifacts(
        spec: dsl_types.IOSpec, value: Any
    ) -> list[artifact_types.Artifact]:
        return [_check_artifact(spec, v) for v in _as_artifact_list(spec, value)]

    def run(self) -> dict[str, Any]:
        kwargs = self.build_arguments()
        result = self.func(**kwargs)
        parameter_values: dict[str, Any] = {}
        for name, value in self._returned_values(result).items():
            spec = self.outputs_spec[name]
            if (
                spec.is_artifact
                and not spec.is_list
                and not isinstance(value, artifact_types.Artifact)
            ):
                # Data returned for an artifact: its text becomes the artifact (KFP's rule).
                artifact = self._output_artifact(spec)
                with open(artifact.path, "w", encoding="utf-8") as handle:
                    handle.write(str(value))
                continue
            if spec.is_artifact:
                self.returned_artifacts[name] = self._check_returned_artifacts(spec, value)
                continue
            parameter_values[name] = _check_output(name, spec.parameter_type, value)
        for name, path in self._path_outputs.items():
            if not os.path.exists(path):
                raise KubelabError(
                    f"Function '{self.func.__name__}' did not write OutputPath '{name}' ({path}).",
                    output=name,
                )
            with open(path, encoding="utf-8") as handle:
                parameter_values[name] = _parse_output_file(
                    self.outputs_spec[name].parameter_type, handle.read()
                )
        for name, value in parameter_values.items():
            if name in self._path_outputs:
                continue
            path = (self.output_parameters.get(name) or {}).get("outputFile")
            if path:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(_serialise_parameter(value))
        executor_output: dict[str, Any] = {}
        if parameter_values:
            executor_output["parameterValues"] = parameter_values
        produced = {name: [a] for name, a in self.output_artifacts.items()}
        produced.update(self.returned_artifacts)
        if produced:
            executor_output["artifacts"] = {
                name: {"artifacts": [a.to_executor_output() for a in artifacts]}
                for name, artifacts in produced.items()
            }
        if self.output_file:
            os.makedirs(os.path.dirname(self.output_file) or ".", exist_ok=True)
            with open(self.output_file, "w", encoding="utf-8") as handle:
                json.dump(executor_output, handle)
        return executor_output


def _missing_uri(name: str) -> KubelabError:
    return KubelabError(
        f"Returned artifact '{name}' has no uri; create it with uri=dsl.get_uri() "
        "and write to its .path.",
        output=name,
    )


def _check_artifact(spec: dsl_types.IOSpec, value: Any) -> artifact_types.Artifact:
    if not isinstance(value, artifact_types.Artifact):
        raise KubelabError(
            f"Output '{spec.name}' is declared as an artifact; the function returned "
            f"{type(value).__name__} {value!r}.",
            output=spec.name,
        )
    if not value.uri:
        raise _missing_uri(spec.name)
    return value


def _as_artifact_list(spec: dsl_types.IOSpec, value: Any) -> list[Any]:
    if spec.is_list:
        if not isinstance(value, (list, tuple)):
            raise KubelabError(
                f"Output '{spec.name}' is a list of artifacts; the function returned "
                f"{type(value).__name__}.",
                output=spec.name,
            )
        return list(value)
    return [value]


def execute(executor_input: dict[str, Any], component_source: str, function_name: str) -> dict:
    """Run `function_name` from `component_source` on KFP's ExecutorInput.

    Returns the ExecutorOutput dict (also written to `outputs.outputFile`).
    """
    if isinstance(executor_input, str):
        executor_input = json.loads(executor_input)
    func = load_function(component_source, function_name, "ephemeral_component.py")
    return Executor(executor_input, func).run()


__all__ = ["Executor", "execute", "load_function"]
