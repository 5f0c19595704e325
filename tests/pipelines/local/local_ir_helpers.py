"""Build small KFP v2 IR dicts by hand, with shell-command (container) executors.

The engine's contract is the IR, so tests write it directly instead of depending on
the DSL and compiler.
"""

from __future__ import annotations

import copy
from typing import Any


def shell_component(
    script: str,
    *,
    inputs: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
    artifacts_in: dict[str, str] | None = None,
    artifacts_out: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    resources: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(component spec, executor spec). In `script`, `$IN_x`/`$OUT_y` are the input
    values / output files; `$ART_IN_a` / `$ART_OUT_b` are artifact paths."""
    inputs, outputs = inputs or {}, outputs or {}
    artifacts_in, artifacts_out = artifacts_in or {}, artifacts_out or {}
    prologue = []
    args: list[str] = []
    for name in inputs:
        prologue.append(f'IN_{name}="$1"; shift')
        args.append(f"{{{{$.inputs.parameters['{name}']}}}}")
    for name in outputs:
        prologue.append(f'OUT_{name}="$1"; shift')
        args.append(f"{{{{$.outputs.parameters['{name}'].output_file}}}}")
    for name in artifacts_in:
        prologue.append(f'ART_IN_{name}="$1"; shift')
        args.append(f"{{{{$.inputs.artifacts['{name}'].path}}}}")
    for name in artifacts_out:
        prologue.append(f'ART_OUT_{name}="$1"; shift')
        args.append(f"{{{{$.outputs.artifacts['{name}'].path}}}}")
    component: dict[str, Any] = {}
    if inputs or artifacts_in:
        component["inputDefinitions"] = {}
        if inputs:
            component["inputDefinitions"]["parameters"] = {
                k: {"parameterType": t} for k, t in inputs.items()
            }
        if artifacts_in:
            component["inputDefinitions"]["artifacts"] = {
                k: {"artifactType": {"schemaTitle": t, "schemaVersion": "0.0.1"}}
                for k, t in artifacts_in.items()
            }
    if outputs or artifacts_out:
        component["outputDefinitions"] = {}
        if outputs:
            component["outputDefinitions"]["parameters"] = {
                k: {"parameterType": t} for k, t in outputs.items()
            }
        if artifacts_out:
            component["outputDefinitions"]["artifacts"] = {
                k: {"artifactType": {"schemaTitle": t, "schemaVersion": "0.0.1"}}
                for k, t in artifacts_out.items()
            }
    container: dict[str, Any] = {
        "image": "alpine:3",
        "command": ["sh", "-c", "\n".join([*prologue, script]), "sh"],
        "args": args,
    }
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if resources:
        container["resources"] = resources
    return component, {"container": container}


class PipelineBuilder:
    """Accumulates components, executors and root-DAG tasks into one PipelineSpec."""

    def __init__(self, name: str = "test-pipeline") -> None:
        self.spec: dict[str, Any] = {
            "pipelineInfo": {"name": name},
            "schemaVersion": "2.1.0",
            "components": {},
            "deploymentSpec": {"executors": {}},
            "root": {"dag": {"tasks": {}}},
        }

    def component(self, name: str, comp_exec: tuple[dict[str, Any], dict[str, Any]]) -> str:
        component, executor = copy.deepcopy(comp_exec)
        component["executorLabel"] = f"exec-{name}"
        self.spec["components"][f"comp-{name}"] = component
        self.spec["deploymentSpec"]["executors"][f"exec-{name}"] = executor
        return f"comp-{name}"

    def dag_component(self, name: str, dag: dict[str, Any], **definitions: Any) -> str:
        self.spec["components"][f"comp-{name}"] = {"dag": dag, **definitions}
        return f"comp-{name}"

    def param(self, name: str, ptype: str, default: Any = None) -> None:
        params = self.spec["root"].setdefault("inputDefinitions", {}).setdefault("parameters", {})
        params[name] = {"parameterType": ptype}
        if default is not None:
            params[name]["defaultValue"] = default
            params[name]["isOptional"] = True

    def task(
        self,
        name: str,
        component: str,
        *,
        dag: dict[str, Any] | None = None,
        after: list[str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        task: dict[str, Any] = {"componentRef": {"name": component}, "taskInfo": {"name": name}}
        if after:
            task["dependentTasks"] = after
        task.update(extra)
        (dag or self.spec["root"]["dag"])["tasks"][name] = task
        return task

    def output(self, name: str, producer: str, key: str, ptype: str = "STRING") -> None:
        root = self.spec["root"]
        root["dag"].setdefault("outputs", {}).setdefault("parameters", {})[name] = {
            "valueFromParameter": {"producerSubtask": producer, "outputParameterKey": key}
        }
        root.setdefault("outputDefinitions", {}).setdefault("parameters", {})[name] = {
            "parameterType": ptype
        }


def from_parent(name: str) -> dict[str, Any]:
    return {"componentInputParameter": name}


def from_task(task: str, key: str) -> dict[str, Any]:
    return {"taskOutputParameter": {"producerTask": task, "outputParameterKey": key}}


def constant(value: Any) -> dict[str, Any]:
    return {"runtimeValue": {"constant": value}}


def artifact_from(task: str, key: str) -> dict[str, Any]:
    return {"taskOutputArtifact": {"producerTask": task, "outputArtifactKey": key}}
