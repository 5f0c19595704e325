"""`Compiler().compile(pipeline, "p.yaml")`: build the IR, then write it atomically."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import yaml

from kubelab.pipelines.compiler.pipeline_spec_builder import build_specs
from kubelab.pipelines.dsl.types import PARAMETER_TYPE_NAMES, TASK_FINAL_STATUS
from kubelab.pipelines.errors import KubelabError

_HEADER_TYPES = {**PARAMETER_TYPE_NAMES, TASK_FINAL_STATUS: "PipelineTaskFinalStatus"}


def _header(spec: dict[str, Any], description: str | None = None) -> str:
    """KFP's human-readable comment block at the top of the YAML: name, description
    (continued lines aligned), then each input with its type and default, and each
    output with its type."""
    info = spec.get("pipelineInfo", {})
    lines = ["# PIPELINE DEFINITION", f"# Name: {info.get('name', '')}"]
    description = info.get("description") or description
    if description:
        first, *rest = str(description).strip().splitlines() or [""]
        lines.append(f"# Description: {first}")
        lines.extend(f"#              {line}" for line in rest)
    for title, key in (("Inputs", "inputDefinitions"), ("Outputs", "outputDefinitions")):
        section = spec.get("root", {}).get(key, {})
        entries: dict[str, str] = {}
        for name, definition in section.get("parameters", {}).items():
            entries[name] = _HEADER_TYPES.get(definition.get("parameterType", ""), "Any")
            if "defaultValue" in definition:
                entries[name] += f" [Default: {definition['defaultValue']!r}]"
        for name, definition in section.get("artifacts", {}).items():
            title_ = definition["artifactType"]["schemaTitle"]
            entries[name] = f"List[{title_}]" if definition.get("isArtifactList") else title_
        if entries:
            lines.append(f"# {title}:")
            lines.extend(f"#    {name}: {entries[name]}" for name in sorted(entries))
    return "\n".join(lines) + "\n"


def render(
    spec: dict[str, Any],
    platform: dict[str, Any] | None,
    path: str,
    description: str | None = None,
) -> str:
    """The file text: YAML (PipelineSpec, then PlatformSpec if any) or JSON for .json.

    `description` is a component's, which KFP writes in the header only.
    """
    if path.endswith(".json"):
        if platform:
            raise KubelabError(
                "This pipeline has Kubernetes platform settings, which only the YAML "
                "format can hold; write to a .yaml file.",
                path=path,
            )
        return json.dumps(spec, indent=2, sort_keys=True) + "\n"
    text = _header(spec, description) + yaml.safe_dump(
        spec, sort_keys=True, default_flow_style=False
    )
    if platform:
        text += "---\n" + yaml.safe_dump(platform, sort_keys=True, default_flow_style=False)
    return text


def write_atomically(path: str, text: str) -> None:
    """Write via a temp file in the same directory and rename: never half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kubelab-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Compiler:
    """KFP's compiler entry point."""

    def compile(
        self,
        pipeline_func: Any,
        package_path: str,
        pipeline_name: str | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        type_check: bool = True,
    ) -> None:
        if not isinstance(package_path, (str, os.PathLike)):
            raise KubelabError(f"package_path must be a file path, got {package_path!r}.")
        package_path = os.fspath(package_path)
        if not package_path.endswith((".yaml", ".yml", ".json")):
            raise KubelabError(
                f"package_path must end in .yaml, .yml or .json, got {package_path!r}.",
                path=package_path,
            )
        spec, platform = build_specs(pipeline_func, pipeline_parameters)
        if pipeline_name:
            spec["pipelineInfo"]["name"] = pipeline_name
        description = getattr(pipeline_func, "description", None)
        write_atomically(package_path, render(spec, platform, package_path, description))
