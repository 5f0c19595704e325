"""Input resolution: the values a task receives from its parent DAG, its upstream tasks,
constants and final statuses, typed as its component declares.

Owns: `resolve_inputs` (pure: no processes, no store) and `argument_artifacts` (the
pipeline's own artifact arguments).
"""

from __future__ import annotations

from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.local import ir as irutil
from kubelab.pipelines.local.outcomes import ConditionSkip, Outcome


def resolve_inputs(
    qname: str,
    spec: dict[str, Any],
    component: dict[str, Any],
    params: dict[str, Any],
    artifacts: dict[str, list[dict[str, Any]]],
    results: dict[str, Outcome],
    *,
    run_id: str,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The parameters and artifacts task `qname` receives, typed as its component
    declares; `ConditionSkip` when one comes from a task a false condition skipped."""
    inputs = spec.get("inputs", {})
    definitions = component.get("inputDefinitions", {})
    out_params: dict[str, Any] = {}
    for key, source in inputs.get("parameters", {}).items():
        if "componentInputParameter" in source:
            parent = source["componentInputParameter"]
            if parent not in params:
                raise KubelabError(
                    f"task {qname!r}: input {key!r} reads missing parent parameter {parent!r}",
                    task=qname,
                )
            value = params[parent]
        elif "taskOutputParameter" in source:
            ref = source["taskOutputParameter"]
            producer = results[ref["producerTask"]]
            if ref["outputParameterKey"] not in producer.parameters:
                if producer.state == "skipped":
                    raise ConditionSkip(f"producer {ref['producerTask']!r} was skipped")
                raise KubelabError(
                    f"task {qname!r}: input {key!r} needs output {ref['outputParameterKey']!r} "
                    f"of task {ref['producerTask']!r}, which did not produce it",
                    task=qname,
                )
            value = producer.parameters[ref["outputParameterKey"]]
        elif "runtimeValue" in source:
            rv = source["runtimeValue"]
            if "constant" in rv:
                value = rv["constant"]
            else:  # legacy constantValue {stringValue|intValue|doubleValue}
                value = next(iter(rv.get("constantValue", {"v": None}).values()))
        elif "taskFinalStatus" in source:
            producer_name = source["taskFinalStatus"]["producerTask"]
            producer = results[producer_name]
            state = {
                "succeeded": "SUCCEEDED",
                "failed": "FAILED",
                "cancelled": "CANCELLED",
            }.get(producer.state, "SUCCEEDED")
            value = {
                "state": state,
                "pipelineJobResourceName": run_id,
                "pipelineTaskName": producer_name,
                "error": {"code": 1, "message": producer.error or ""}
                if state != "SUCCEEDED"
                else {},
            }
        else:
            raise KubelabError(
                f"task {qname!r}: unsupported input source for {key!r}: {sorted(source)}",
                task=qname,
            )
        selector = source.get("parameterExpressionSelector")
        if selector:
            value = irutil.apply_expression_selector(value, selector, task=qname)
        # Executors get their declared types; DAG inputs pass values through unchanged,
        # as on KFP, where a loop item may be declared STRING yet carry a number.
        ptype = None
        if "dag" not in component:
            ptype = definitions.get("parameters", {}).get(key, {}).get("parameterType")
        out_params[key] = irutil.coerce_value(value, ptype, what=f"task {qname!r} input {key!r}")
    out_artifacts: dict[str, list[dict[str, Any]]] = {}
    for key, source in inputs.get("artifacts", {}).items():
        if "componentInputArtifact" in source:
            parent = source["componentInputArtifact"]
            if parent not in artifacts:
                raise KubelabError(
                    f"task {qname!r}: input artifact {key!r} reads missing "
                    f"parent artifact {parent!r}",
                    task=qname,
                )
            out_artifacts[key] = artifacts[parent]
        elif "taskOutputArtifact" in source:
            ref = source["taskOutputArtifact"]
            producer = results[ref["producerTask"]]
            if ref["outputArtifactKey"] not in producer.artifacts:
                if producer.state == "skipped":
                    raise ConditionSkip(f"producer {ref['producerTask']!r} was skipped")
                raise KubelabError(
                    f"task {qname!r}: input artifact {key!r} needs output "
                    f"{ref['outputArtifactKey']!r} of task {ref['producerTask']!r}, "
                    "which did not produce it",
                    task=qname,
                )
            out_artifacts[key] = producer.artifacts[ref["outputArtifactKey"]]
        else:
            raise KubelabError(
                f"task {qname!r}: unsupported artifact source for {key!r}", task=qname
            )
    # Defaults the component declares for inputs the task leaves unset.
    for key, pdef in definitions.get("parameters", {}).items():
        if key not in out_params and "defaultValue" in pdef:
            out_params[key] = irutil.coerce_value(
                pdef["defaultValue"],
                pdef.get("parameterType"),
                what=f"task {qname!r} input {key!r}",
            )
    return out_params, out_artifacts


def argument_artifacts(name: str, value: Any) -> list[dict[str, Any]]:
    """A pipeline argument given for an artifact input (dicts, dsl artifacts or URIs)."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
        elif hasattr(item, "uri"):
            out.append(
                {
                    "name": getattr(item, "name", name),
                    "type": {"schemaTitle": getattr(item, "schema_title", "system.Artifact")},
                    "uri": item.uri,
                    "metadata": dict(getattr(item, "metadata", {}) or {}),
                }
            )
        else:
            out.append(
                {
                    "name": name,
                    "type": {"schemaTitle": "system.Artifact"},
                    "uri": str(item),
                    "metadata": {},
                }
            )
    return out
