"""Resolve KFP IR placeholders in a container command, as the KFP launcher does.

Pure functions over the executor_input dict: `{{$}}`, `{{$.inputs.parameters['x']}}`,
`{{$.inputs.artifacts['a'].path}}`, `{{$.outputs.parameters['p'].output_file}}`,
`{{$.outputs.artifacts['m'].uri}}`, the pipeline/task name and id placeholders, and
the `Concat` / `IfPresent` structures that KFP serialises as JSON strings.
"""

from __future__ import annotations

import json
import re
from typing import Any

_IO = re.compile(r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']*)'\](?:\.(\w+))?\}\}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _io_value(
    executor_input: dict[str, Any], side: str, kind: str, key: str, attr: str | None
) -> str:
    if side == "inputs" and kind == "parameters":
        return _text(executor_input["inputs"].get("parameterValues", {}).get(key))
    if side == "outputs" and kind == "parameters":
        return executor_input["outputs"]["parameters"][key]["outputFile"]
    section = executor_input[side].get("artifacts", {}).get(key, {"artifacts": []})
    artifacts = section.get("artifacts", [])
    if not artifacts:
        return ""
    if attr is None:  # the artifact(s) whole, as JSON (a list input passed as one argument)
        return json.dumps(artifacts)
    artifact = artifacts[0]
    if attr in ("path", "uri"):
        return str(artifact["uri"])
    if attr == "metadata":
        return json.dumps(artifact.get("metadata", {}))
    return _text(artifact.get(attr, ""))


def resolve_string(text: str, executor_input: dict[str, Any], names: dict[str, str]) -> str:
    """Replace every placeholder inside one string."""
    constants = {
        "{{$}}": lambda: json.dumps(executor_input),
        "{{$.outputs.output_file}}": lambda: executor_input["outputs"]["outputFile"],
        "{{$.outputMetadataUri}}": lambda: executor_input["outputs"]["outputFile"],
        "{{$.pipeline_job_name}}": lambda: names["job_name"],
        "{{$.pipeline_job_resource_name}}": lambda: names["job_name"],
        "{{$.pipeline_job_uuid}}": lambda: names["job_id"],
        "{{$.pipeline_task_name}}": lambda: names["task_name"],
        "{{$.pipeline_task_uuid}}": lambda: names["task_id"],
        "{{$.pipeline_root}}": lambda: names["pipeline_root"],
        "{{$.pipeline_job_create_time_utc}}": lambda: names.get("create_time", ""),
        "{{$.pipeline_job_schedule_time_utc}}": lambda: names.get("create_time", ""),
        "{{$.workspace_path}}": lambda: names.get("workspace", ""),
    }
    for placeholder, value in constants.items():
        if placeholder in text:
            text = text.replace(placeholder, value())
    return _IO.sub(lambda m: _io_value(executor_input, *m.groups()), text)


def resolve_value(value: Any, executor_input: dict[str, Any], names: dict[str, str]) -> Any:
    """`resolve_string` through the strings of a constant (f-strings in lists, dicts)."""
    if isinstance(value, str):
        return resolve_string(value, executor_input, names) if "{{$" in value else value
    if isinstance(value, list):
        return [resolve_value(v, executor_input, names) for v in value]
    if isinstance(value, dict):
        return {
            resolve_value(k, executor_input, names): resolve_value(v, executor_input, names)
            for k, v in value.items()
        }
    return value


def _provided(executor_input: dict[str, Any]) -> set[str]:
    inputs = executor_input.get("inputs", {})
    names = {k for k, v in inputs.get("parameterValues", {}).items() if v is not None}
    names |= {k for k, v in inputs.get("artifacts", {}).items() if v and v.get("artifacts")}
    return names


def _structure(node: Any, provided: set[str]) -> list[str] | str | None:
    if isinstance(node, str):
        return node
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"unknown placeholder structure {node!r}")
    ((kind, body),) = node.items()
    if kind == "Concat":
        parts = [_structure(p, provided) for p in body]
        return "".join(p if isinstance(p, str) else "".join(p) for p in parts if p is not None)
    if kind == "IfPresent":
        branch = body.get("Then") if body["InputName"] in provided else body.get("Else")
        if branch is None:
            return None
        if isinstance(branch, list):
            out: list[str] = []
            for item in branch:
                value = _structure(item, provided)
                if isinstance(value, list):
                    out.extend(value)
                elif value is not None:
                    out.append(value)
            return out
        return _structure(branch, provided)
    raise ValueError(f"unknown placeholder structure {kind!r}")


def resolve_command(
    command: list[str], executor_input: dict[str, Any], names: dict[str, str]
) -> list[str]:
    """The argv a container task runs: structures expanded, then placeholders filled."""
    provided = _provided(executor_input)
    flat: list[str] = []
    for element in command:
        if element.startswith(('{"Concat"', '{"IfPresent"')):
            value = _structure(json.loads(element), provided)
        else:
            value = element
        if value is None:
            continue
        flat.extend(value if isinstance(value, list) else [value])
    return [resolve_string(e, executor_input, names) for e in flat]
