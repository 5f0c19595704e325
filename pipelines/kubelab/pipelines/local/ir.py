"""Pure helpers over KFP v2 IR (a PipelineSpec as a dict): types, arguments, executors.

Nothing here touches processes or the store, so the engine and the CLI share one
reading of the IR.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.requirements import PipInstall, parse_pip_install

EXECUTOR_MODULE = "kubelab.pipelines.executor_main"
# IR compiled by the kfp SDK itself: same shape, kfp's executor module.
KFP_EXECUTOR_MODULE = "kfp.dsl.executor_main"

_TYPE_NAMES = {
    "NUMBER_INTEGER": "int",
    "NUMBER_DOUBLE": "float",
    "STRING": "str",
    "BOOLEAN": "bool",
    "LIST": "list",
    "STRUCT": "dict",
    "TASK_FINAL_STATUS": "PipelineTaskFinalStatus",
}


def type_name(parameter_type: str) -> str:
    return _TYPE_NAMES.get(parameter_type, parameter_type)


def coerce_value(value: Any, parameter_type: str | None, *, what: str) -> Any:
    """Bring a JSON value to the declared IR type (JSON has one number type)."""
    if value is None or parameter_type is None:
        return value
    try:
        if parameter_type == "NUMBER_INTEGER":
            if isinstance(value, bool):
                raise ValueError("a bool is not an int")
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(f"{value} is not a whole number")
                return int(value)
            if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
                as_float = float(value)
                if not as_float.is_integer():
                    raise ValueError(f"{value} is not a whole number")
                return int(as_float)
            return int(value)
        if parameter_type == "NUMBER_DOUBLE":
            if isinstance(value, bool):
                raise ValueError("a bool is not a number")
            return float(value)
        if parameter_type == "BOOLEAN":
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes"):
                    return True
                if value.lower() in ("false", "0", "no"):
                    return False
                raise ValueError(f"{value!r} is not true/false")
            return bool(value)
        if parameter_type == "STRING":
            return value if isinstance(value, str) else json.dumps(value)
        if parameter_type == "LIST":
            value = json.loads(value) if isinstance(value, str) else value
            if not isinstance(value, list | tuple):
                raise ValueError("expected a list")
            return list(value)
        if parameter_type == "STRUCT":
            value = json.loads(value) if isinstance(value, str) else value
            if not isinstance(value, dict):
                raise ValueError("expected a dict")
            return value
    except (ValueError, TypeError) as error:
        raise KubelabError(
            f"{what}: expected {type_name(parameter_type)}, got {value!r} ({error})"
        ) from error
    return value


def parse_cli_value(text: str, parameter_type: str, *, name: str) -> Any:
    """A `--param k=v` string as the declared type (lists/dicts as JSON)."""
    if parameter_type in ("LIST", "STRUCT"):
        try:
            return coerce_value(json.loads(text), parameter_type, what=f"parameter {name!r}")
        except json.JSONDecodeError as error:
            raise KubelabError(
                f"parameter {name!r}: expected JSON {type_name(parameter_type)}, got {text!r}",
                parameter=name,
            ) from error
    return coerce_value(text, parameter_type, what=f"parameter {name!r}")


def pipeline_name(ir: dict[str, Any]) -> str:
    return str(ir.get("pipelineInfo", {}).get("name") or "pipeline")


def root_parameters(ir: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(ir.get("root", {}).get("inputDefinitions", {}).get("parameters", {}))


def root_artifacts(ir: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(ir.get("root", {}).get("inputDefinitions", {}).get("artifacts", {}))


def check_parameter_names(given: Iterable[str], valid: Iterable[str]) -> None:
    """Refuse a parameter the pipeline (or notebook) does not declare, naming the valid ones.

    The one check behind the CLI's `--param`, the REST API, `Client` and the engine.
    """
    valid = sorted(valid)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise KubelabError(
            f"unknown parameter {unknown[0]!r}; valid parameters: {', '.join(valid) or '(none)'}",
            parameter=unknown[0],
            valid=valid,
        )


def resolve_arguments(ir: dict[str, Any], arguments: dict[str, Any] | None) -> dict[str, Any]:
    """Validated pipeline arguments with defaults filled, typed as the IR declares."""
    arguments = dict(arguments or {})
    params = root_parameters(ir)
    artifacts = root_artifacts(ir)
    check_parameter_names(arguments, [*params, *artifacts])
    resolved: dict[str, Any] = {}
    for name, spec in params.items():
        ptype = spec.get("parameterType")
        if name in arguments:
            resolved[name] = coerce_value(arguments[name], ptype, what=f"parameter {name!r}")
        elif "defaultValue" in spec:
            resolved[name] = coerce_value(spec["defaultValue"], ptype, what=f"parameter {name!r}")
        elif spec.get("isOptional"):
            resolved[name] = None
        else:
            raise KubelabError(
                f"missing required parameter {name!r} ({type_name(ptype or '')}) for pipeline "
                f"{pipeline_name(ir)!r}",
                parameter=name,
            )
    for name, spec in artifacts.items():
        if name in arguments:
            resolved[name] = arguments[name]
        elif not spec.get("isOptional"):
            raise KubelabError(
                f"missing required input artifact {name!r} for pipeline {pipeline_name(ir)!r}",
                parameter=name,
            )
    return resolved


_SELECTOR_STEP = re.compile(r"\[\s*(\"[^\"]*\"|'[^']*'|-?\d+)\s*\]")


def apply_expression_selector(value: Any, expression: str, *, task: str) -> Any:
    """`parseJson(string_value)["a"][0]`, as KFP writes for loop-item fields."""
    expr = expression.strip()
    if expr.startswith("parseJson(string_value)"):
        rest = expr[len("parseJson(string_value)") :]
        if isinstance(value, str):
            value = json.loads(value)
    elif expr.startswith("string_value") or expr.startswith("struct_value"):
        rest = expr.split("_value", 1)[1]
    else:
        rest = expr
    for m in _SELECTOR_STEP.finditer(rest):
        key = m.group(1)
        try:
            value = value[int(key)] if key[0] not in "\"'" else value[key[1:-1]]
        except (KeyError, IndexError, TypeError) as error:
            raise KubelabError(
                f"task {task!r}: expression {expression!r} does not apply to {value!r}",
                task=task,
            ) from error
    return value


@dataclass(frozen=True)
class PythonExecutor:
    """A lightweight Python component that kubelab can run in a warm worker."""

    source: str
    function_name: str
    pip: PipInstall
    # Compiled by the kfp SDK: its `from kfp import dsl` runs on kubelab's DSL.
    kfp_source: bool = False

    @property
    def packages(self) -> tuple[str, ...]:
        """What the component asked pip for, less what the engine provides itself."""
        return self.pip.requirements


def python_executor(container: dict[str, Any]) -> PythonExecutor | None:
    """Recognise the kubelab lightweight-component command shape, else None."""
    command = list(container.get("command", []))
    args = list(container.get("args", []))
    if len(command) < 3 or command[:2] != ["sh", "-c"]:
        return None
    kfp_source = any(KFP_EXECUTOR_MODULE in part for part in command)
    if not kfp_source and not any(EXECUTOR_MODULE in part for part in command):
        return None
    if "--function_to_execute" not in args:
        return None
    function_name = args[args.index("--function_to_execute") + 1]
    return PythonExecutor(
        source=command[-1],
        function_name=function_name,
        pip=parse_pip_install(command[2]),
        kfp_source=kfp_source,
    )


def imported_modules(source: str) -> set[str]:
    """Modules a component's source imports (inside its function too).

    Third-party imports are reduced to their top-level package; `from a.b import c`
    also yields `a.b` and `a.b.c`, so kubelab's own runtime modules get preloaded.
    """
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.add(alias.name.split(".")[0])
                names.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names if a.name != "*")
    return names


def check_pipeline_spec(ir: Any, where: str = "the pipeline") -> None:
    """Refuse what is not a runnable KFP PipelineSpec, before anything is recorded.

    The real `kfp-pipeline-spec` protobuf checks field names and types; on top of
    that a run needs a name, a root DAG, and every component and executor a task
    refers to.
    """
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    if not isinstance(ir, dict) or "root" not in ir:
        raise KubelabError(f"{where} is not a compiled pipeline (no 'root' DAG)")
    try:
        json_format.ParseDict(ir, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    except json_format.ParseError as error:
        first_line = str(error).strip().splitlines()[0]
        raise KubelabError(f"{where} is not a valid KFP pipeline: {first_line}") from error
    if not str(ir.get("pipelineInfo", {}).get("name") or "").strip():
        raise KubelabError(f"{where} is not a valid KFP pipeline: pipelineInfo.name is empty")
    components = ir.get("components", {})
    executors = ir.get("deploymentSpec", {}).get("executors", {})
    for owner, component in [("root", ir["root"]), *components.items()]:
        label = component.get("executorLabel")
        if label is not None and label not in executors:
            raise KubelabError(
                f"{where} is not a valid KFP pipeline: component {owner!r} runs executor "
                f"{label!r}, which deploymentSpec does not define"
            )
        for task, spec in component.get("dag", {}).get("tasks", {}).items():
            ref = spec.get("componentRef", {}).get("name")
            if ref not in components:
                raise KubelabError(
                    f"{where} is not a valid KFP pipeline: task {task!r} of {owner!r} refers "
                    f"to component {ref!r}, which 'components' does not define"
                )


def load_ir_file(path: str | Path) -> dict[str, Any]:
    """A compiled pipeline (YAML or JSON); in multi-document YAML the first is the spec."""
    return load_ir_documents(path)[0]


def load_ir_documents(path: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(PipelineSpec, PlatformSpec or None) of a compiled pipeline file: kfp writes the
    Kubernetes settings as a second YAML document."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise KubelabError(f"cannot read {path}: {error.strerror}", path=str(path)) from error
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        raise KubelabError(f"{path} is not valid YAML: {error}", path=str(path)) from error
    if not docs or not isinstance(docs[0], dict):
        raise KubelabError(f"{path} is not a compiled pipeline (no 'root' DAG)", path=str(path))
    try:
        check_pipeline_spec(docs[0], str(path))
    except KubelabError as error:
        raise KubelabError(error.message, path=str(path)) from error
    platform = docs[1] if len(docs) > 1 and isinstance(docs[1], dict) else None
    return docs[0], platform
