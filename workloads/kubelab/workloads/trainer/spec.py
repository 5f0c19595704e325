"""A training job's spec: checked, normalised, and turned into the program every node runs.

The same normalised spec feeds the local runner and the Kubernetes manifests, so a
job behaves the same on both. Its training program comes from one of three places:

* a function (`CustomTrainer(func=...)`): its source, called as the Kubeflow SDK
  does (`func(**func_args)`), with the arguments read from KUBELAB_FUNC_ARGS (JSON);
* a `.py` file: run as is, parameters passed as `--name value` arguments;
* a notebook: its non-`skip` code cells in order, as one script, with the
  `pipeline-parameters` values replaced from KUBELAB_PARAMETERS (JSON).

Values travel as JSON data in the environment, never pasted into code, so no
user-supplied string becomes code.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError, NotFoundError
from kubelab.workloads.trainer.types import DEFAULT_RUNTIME

MAX_NODES = 64
MAX_PROCS_PER_NODE = 64
APIS = ("TrainJob", "PyTorchJob")
FUNC_ARGS_ENV = "KUBELAB_FUNC_ARGS"
PARAMETERS_ENV = "KUBELAB_PARAMETERS"
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([EPTGMk]i?|m|e[0-9]+)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Resource names a node may ask for besides cpu/memory/gpu (extended resources).
_EXTENDED = re.compile(r"^([a-z0-9.-]+/)?[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SPEC_KEYS = {
    "name",
    "path",
    "function",
    "func_args",
    "parameters",
    "num_nodes",
    "nodes",
    "nproc_per_node",
    "gpus_per_node",
    "resources_per_node",
    "env",
    "packages_to_install",
    "pip_index_urls",
    "runtime",
    "image",
    "api",
}


def _positive_int(value: Any, field: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise KubelabError(f"{field} must be a whole number, got {value!r}", field=field)
    try:
        number = int(value)
    except ValueError:
        raise KubelabError(f"{field} must be a whole number, got {value!r}", field=field) from None
    if not 1 <= number <= maximum:
        raise KubelabError(f"{field} must be between 1 and {maximum}, got {number}", field=field)
    return number


def _resources(value: Any, gpus_per_node: Any) -> dict[str, Any]:
    """`{"gpu": int, "cpu": "2", "memory": "4Gi", ...}` with quantities as strings."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise KubelabError("resources_per_node must be an object", field="resources_per_node")
    out: dict[str, Any] = {}
    for key, raw in value.items():
        name = str(key)
        low = name.lower()
        if low in ("gpu", "nvidia.com/gpu"):
            if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
                raise KubelabError(
                    f"resources_per_node.gpu must be a whole number, got {raw!r}",
                    field="resources_per_node.gpu",
                )
            out["gpu"] = int(raw)
            continue
        if low not in ("cpu", "memory") and not _EXTENDED.match(name):
            raise KubelabError(
                f"resources_per_node: {name!r} is not a resource name",
                field="resources_per_node",
            )
        text = str(raw)
        if isinstance(raw, bool) or not _QUANTITY.match(text):
            raise KubelabError(
                f"resources_per_node.{name} must be a quantity like '2', '500m' or '4Gi', "
                f"got {raw!r}",
                field=f"resources_per_node.{name}",
            )
        out[low if low in ("cpu", "memory") else name] = text
    if gpus_per_node is not None:
        if isinstance(gpus_per_node, bool) or not str(gpus_per_node).isdigit():
            raise KubelabError(
                f"gpus_per_node must be a whole number, got {gpus_per_node!r}",
                field="gpus_per_node",
            )
        out["gpu"] = int(gpus_per_node)
    if not out.get("gpu"):
        out.pop("gpu", None)
    return out


def _string_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise KubelabError(f"{field} must be an object of names to strings", field=field)
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise KubelabError(f"{field}: {key!r} is not a valid variable name", field=field)
        out[key] = str(item)
    return out


def _json_object(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise KubelabError(f"{field} must be an object (keyword arguments)", field=field)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise KubelabError(
            f"{field} must hold plain JSON values (numbers, strings, lists, dicts): {error}",
            field=field,
        ) from None
    return value


def _confined(path_text: Any, root: Path | None) -> Path:
    if not isinstance(path_text, str) or not path_text.strip():
        raise KubelabError("path must name a .py or .ipynb file", field="path")
    base = (root or Path.cwd()).resolve()
    path = (base / path_text).resolve()
    if not path.is_relative_to(base):
        raise KubelabError(f"path {path_text!r} is outside your root folder", field="path")
    if not path.is_file():
        raise NotFoundError(f"no such file: {path_text}", path=path_text)
    return path


# -- training programs ----------------------------------------------------------------


def function_source(func: Callable[..., Any]) -> dict[str, str]:
    """`{"name", "code"}` of a training function, as the Kubeflow SDK captures it."""
    if not callable(func):
        raise KubelabError(f"func must be a function, got {type(func).__name__}", field="func")
    name = getattr(func, "__name__", "")
    if not name.isidentifier():
        raise KubelabError(
            "func must be a function defined with `def` (not a lambda)", field="func"
        )
    try:
        code = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as error:
        raise KubelabError(
            f"cannot read the source of {name}(): {error}; define it in a notebook cell or "
            "a .py file",
            field="func",
        ) from None
    return {"name": name, "code": code}


def function_program(function: dict[str, str]) -> str:
    """The script of a function job: the function, then a call with KUBELAB_FUNC_ARGS."""
    return (
        f"{function['code'].rstrip()}\n\n\n"
        "if __name__ == '__main__':\n"
        "    import json as _kubelab_json, os as _kubelab_os\n"
        f"    {function['name']}(**_kubelab_json.loads("
        f"_kubelab_os.environ.get({FUNC_ARGS_ENV!r}) or '{{}}'))\n"
    )


def notebook_program(path: Path, overrides: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(script, parameters): the notebook's non-skip code cells as one script, and the
    `pipeline-parameters` values with `overrides` (checked against their types)."""
    from kubelab.pipelines.notebook.magics import translate
    from kubelab.pipelines.notebook.parameters import parse_parameters, parse_value
    from kubelab.pipelines.notebook.pipeline import load_notebook, read_cells
    from kubelab.pipelines.notebook.tags import group_cells

    notebook, _ = load_notebook(str(path))
    cells = read_cells(notebook)
    grouped = group_cells(cells)
    kept = {c.index for c in grouped.imports + grouped.functions + grouped.parameters}
    kept |= {c.index for c in grouped.metrics}
    kept |= {c.index for step in grouped.steps for c in step.cells}
    param_cells = {c.index for c in grouped.parameters}
    declared = parse_parameters(
        [
            (c, ast.parse(translate(c.source, cell=c.index, step=None).source))
            for c in grouped.parameters
        ]
    )
    values: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in declared:
            known = ", ".join(declared) or "none (the notebook has no pipeline-parameters cell)"
            raise KubelabError(
                f"unknown parameter {key!r}; parameters: {known}", field="parameters", name=key
            )
        values[key] = parse_value(raw, declared[key]) if isinstance(raw, str) else raw
    parts = [f"# kubelab: training script from {path.name} (non-skip code cells)\n"]
    for cell in cells:
        if cell.index not in kept:
            continue
        code = translate(cell.source, cell=cell.index, step=None).source
        parts.append(f"# -- cell {cell.index}\n{code.rstrip()}\n")
        if cell.index in param_cells:
            parts.append(
                "globals().update(__import__('json').loads("
                f"__import__('os').environ.get({PARAMETERS_ENV!r}) or '{{}}'))\n"
            )
    return "\n".join(parts), values


def script_argv(parameters: dict[str, Any]) -> list[str]:
    """`--name value` arguments of a .py job's parameters (argparse-friendly)."""
    argv: list[str] = []
    for key, value in parameters.items():
        argv += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return argv


# -- the spec --------------------------------------------------------------------------


def normalise(spec: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
    """The checked spec (see the module docstring), or a `KubelabError` naming the field."""
    if not isinstance(spec, dict):
        raise KubelabError("a training spec must be an object")
    unknown = sorted(set(spec) - _SPEC_KEYS - {"kind", "backend"})
    if unknown:
        raise KubelabError(
            f"unknown field(s) {', '.join(unknown)}; fields: {', '.join(sorted(_SPEC_KEYS))}",
            field=unknown[0],
        )
    has_path, has_function = spec.get("path") is not None, spec.get("function") is not None
    if has_path == has_function:
        raise KubelabError(
            "give either path (a .py or .ipynb file) or function (a training function)",
            field="path",
        )
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise KubelabError("parameters must be an object of names to values", field="parameters")
    func_args = _json_object(spec.get("func_args"), "func_args")
    source: dict[str, Any]
    if has_path:
        path = _confined(spec["path"], root)
        relative = str(path.relative_to((root or Path.cwd()).resolve()))
        if path.suffix == ".ipynb":
            code, values = notebook_program(path, parameters)
            source = {"kind": "notebook", "path": relative, "code": code}
            parameters = values
        elif path.suffix == ".py":
            source = {"kind": "script", "path": relative, "code": path.read_text()}
        else:
            raise KubelabError(
                f"path {spec['path']!r}: expected a .py script or a .ipynb notebook", field="path"
            )
        name = spec.get("name") or path.stem
    else:
        function = spec["function"]
        if not (
            isinstance(function, dict)
            and isinstance(function.get("name"), str)
            and function["name"].isidentifier()
            and isinstance(function.get("code"), str)
        ):
            raise KubelabError(
                "function must be {name, code} of a Python function", field="function"
            )
        try:
            ast.parse(function["code"])
        except SyntaxError as error:
            raise KubelabError(
                f"function {function['name']}: {error.msg} (line {error.lineno})",
                field="function",
            ) from None
        source = {
            "kind": "function",
            "function": function["name"],
            "code": function_program(function),
        }
        name = spec.get("name") or function["name"]
    _json_object(parameters, "parameters")
    nodes = spec.get("num_nodes", spec.get("nodes"))
    num_nodes = _positive_int(1 if nodes is None else nodes, "num_nodes", MAX_NODES)
    resources = _resources(spec.get("resources_per_node"), spec.get("gpus_per_node"))
    nproc = spec.get("nproc_per_node")
    nproc_per_node = (
        _positive_int(nproc, "nproc_per_node", MAX_PROCS_PER_NODE)
        if nproc is not None
        else max(1, int(resources.get("gpu", 0)))
    )
    packages = spec.get("packages_to_install") or []
    if not isinstance(packages, list) or not all(
        isinstance(p, str) and p.strip() for p in packages
    ):
        raise KubelabError(
            "packages_to_install must be a list of requirement strings",
            field="packages_to_install",
        )
    api = spec.get("api")
    if api is not None and api not in APIS:
        raise KubelabError(f"api must be one of {', '.join(APIS)}, got {api!r}", field="api")
    runtime = spec.get("runtime") or DEFAULT_RUNTIME
    if not isinstance(runtime, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", runtime):
        raise KubelabError(f"runtime {runtime!r} is not a runtime name", field="runtime")
    image = spec.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip() or " " in image):
        raise KubelabError(f"image {image!r} is not an image reference", field="image")
    return {
        "name": str(name),
        "source": source,
        "func_args": func_args,
        "parameters": parameters,
        "num_nodes": num_nodes,
        "nproc_per_node": nproc_per_node,
        "resources_per_node": resources,
        "env": _string_map(spec.get("env"), "env"),
        "packages_to_install": [p.strip() for p in packages],
        "pip_index_urls": [str(u) for u in spec.get("pip_index_urls") or []],
        "runtime": runtime,
        "image": image,
        "api": api,
    }


def program_env(spec: dict[str, Any]) -> dict[str, str]:
    """The variables that carry the job's arguments to its program (JSON)."""
    env = dict(spec["env"])
    if spec["source"]["kind"] == "function":
        env[FUNC_ARGS_ENV] = json.dumps(spec.get("func_args") or {})
    elif spec["source"]["kind"] == "notebook" and spec["parameters"]:
        env[PARAMETERS_ENV] = json.dumps(spec["parameters"])
    return env


def program_argv(spec: dict[str, Any]) -> list[str]:
    return script_argv(spec["parameters"]) if spec["source"]["kind"] == "script" else []


def check_gpus_allowed(spec: dict[str, Any], profile: dict[str, Any] | None) -> None:
    """A `KubelabError` when a node asks for more GPUs than the user's profile gives."""
    wanted = int(spec["resources_per_node"].get("gpu", 0))
    if not wanted or profile is None:
        return
    allowed = int(((profile.get("gpu") or {}).get("count")) or 0)
    if wanted > allowed:
        raise KubelabError(
            f"{wanted} GPU(s) per node asked, but your profile "
            f"{profile.get('display_name') or profile.get('slug') or ''!s} allows {allowed}",
            field="resources_per_node.gpu",
        )
