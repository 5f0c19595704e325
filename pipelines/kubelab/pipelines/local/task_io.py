"""A task's files: the KFP ExecutorInput it gets and the outputs it leaves behind.

Output parameters come from the ExecutorOutput (returned by the Python executor or
written to `outputs.outputFile` by a container) merged with the per-parameter
output files, read as the KFP launcher reads them (strings raw, the rest as JSON).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.local import ir as irutil
from kubelab.pipelines.local.placeholders import resolve_value

Artifacts = dict[str, list[dict[str, Any]]]


def executor_input(
    task_dir: Path,
    component: dict[str, Any],
    params: dict[str, Any],
    artifacts: dict[str, list[dict[str, Any]]],
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """KFP's ExecutorInput: input values, and output paths under the task's directory.

    `names` fills run-level placeholders in input values (`{{$.workspace_path}}`).
    """
    out_defs = component.get("outputDefinitions", {})
    executor_input: dict[str, Any] = {
        "inputs": {
            "parameterValues": dict(params),
            "artifacts": {k: {"artifacts": v} for k, v in artifacts.items()},
        },
        "outputs": {
            "parameters": {
                k: {"outputFile": str(task_dir / k)} for k in out_defs.get("parameters", {})
            },
            "artifacts": {
                k: {
                    "artifacts": [
                        {
                            "name": k,
                            "type": spec.get("artifactType", {"schemaTitle": "system.Artifact"}),
                            "uri": str(task_dir / k),
                            "metadata": {},
                        }
                    ]
                }
                for k, spec in out_defs.get("artifacts", {}).items()
            },
            "outputFile": str(task_dir / "executor_output.json"),
        },
    }
    # f-string inputs refer to other inputs through placeholders; resolve them.
    values = executor_input["inputs"]["parameterValues"]
    for k, v in list(values.items()):
        values[k] = resolve_value(v, executor_input, names or {})
    return executor_input


def resolve_settings(container: dict[str, Any], executor_input: dict[str, Any]) -> dict[str, Any]:
    """The container with run-time resource and image settings filled in (KFP's driver
    substitutes `{{$.inputs.parameters['pipelinechannel--...']}}` there too)."""
    settings = {k: container[k] for k in ("image", "resources") if k in container}
    return {**container, **resolve_value(settings, executor_input, {})}


def copy_to_workspace(source: str, workspace: Path, task: str) -> str:
    """An importer's `download_to_workspace`: its file or directory, copied into the
    run's workspace where the tasks reading it look for it."""
    import shutil

    if not Path(source).exists():
        raise KubelabError(
            f"importer {task!r}: download_to_workspace needs a local file or directory, "
            f"{source} does not exist",
            task=task,
        )
    target = workspace / ".artifacts" / task.replace("/", "-") / Path(source).name
    target.parent.mkdir(parents=True, exist_ok=True)
    if Path(source).is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)
    return str(target)


def clear_outputs(executor_input: dict[str, Any]) -> None:
    """Remove a failed attempt's output files so a retry cannot pass them on."""
    for p in executor_input["outputs"]["parameters"].values():
        Path(p["outputFile"]).unlink(missing_ok=True)
    Path(executor_input["outputs"]["outputFile"]).unlink(missing_ok=True)


def read_outputs(
    qname: str,
    component: dict[str, Any],
    executor_input: dict[str, Any],
    result: dict[str, Any],
) -> tuple[dict[str, Any], Artifacts]:
    """(parameters, artifacts) a finished task produced; a missing output is an error."""
    executor_output: dict[str, Any] = result.get("output") or {}
    output_file = Path(executor_input["outputs"]["outputFile"])
    if not executor_output and output_file.exists():
        try:
            executor_output = json.loads(output_file.read_text() or "{}")
        except json.JSONDecodeError as exc:
            raise KubelabError(f"task {qname!r}: {output_file} is not JSON: {exc}") from exc
    out_defs = component.get("outputDefinitions", {})
    params: dict[str, Any] = dict(executor_output.get("parameterValues", {}))
    for name, pdef in out_defs.get("parameters", {}).items():
        path = Path(executor_input["outputs"]["parameters"][name]["outputFile"])
        ptype = pdef.get("parameterType")
        if path.exists():
            text = path.read_text()
            try:
                if ptype == "STRING":
                    params[name] = text
                elif ptype == "BOOLEAN":
                    params[name] = json.loads(text.strip().lower())
                else:
                    params[name] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise KubelabError(
                    f"task {qname!r}: output {name!r} file holds {text[:80]!r}, not "
                    f"{irutil.type_name(ptype or '')}"
                ) from exc
        if name in params:
            params[name] = irutil.coerce_value(
                params[name], ptype, what=f"task {qname!r} output {name!r}"
            )
        elif not pdef.get("isOptional"):
            raise KubelabError(f"task {qname!r} did not produce its output {name!r}", task=qname)
    arts: dict[str, list[dict[str, Any]]] = {}
    produced = executor_output.get("artifacts", {})
    for name, section in executor_input["outputs"]["artifacts"].items():
        declared = copy.deepcopy(section["artifacts"])
        overrides = produced.get(name, {}).get("artifacts", [])
        if overrides:
            merged = []
            for i, art in enumerate(overrides):
                base = declared[min(i, len(declared) - 1)]
                merged.append(
                    {
                        **base,
                        **{k: v for k, v in art.items() if v not in (None, "")},
                        "type": base["type"],
                    }
                )
            declared = merged
        arts[name] = declared
    return params, arts


def public_outputs(params: dict[str, Any], arts: Artifacts) -> dict[str, Any]:
    """Outputs as the run JSON shows them: one artifact dict, or a list for lists."""
    out: dict[str, Any] = dict(params)
    for name, items in arts.items():
        out[name] = items[0] if len(items) == 1 else items
    return out


def metrics_of(arts: Artifacts) -> dict[str, float]:
    """Logged values of the Metrics artifacts among `arts` (what KFP shows as run metrics)."""
    found: dict[str, float] = {}
    for items in arts.values():
        for art in items:
            if art.get("type", {}).get("schemaTitle") == "system.Metrics":
                for k, v in (art.get("metadata") or {}).items():
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        found[k] = v
    return found
