"""`dsl.importer`: a task that outputs an existing artifact (a URI), with no process.

Owns: `run_importer`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.local import recording, task_io
from kubelab.pipelines.local.outcomes import Outcome

if TYPE_CHECKING:
    from kubelab.pipelines.local.scheduling import Run


def run_importer(
    run: Run,
    qname: str,
    importer: dict[str, Any],
    component: dict[str, Any],
    params: dict[str, Any],
) -> Outcome:
    """The artifact an importer task outputs: its URI, checked when it is a local path."""
    uri_spec = importer.get("artifactUri", {})
    if "constant" in uri_spec:
        uri = uri_spec["constant"]
    elif "runtimeParameter" in uri_spec:
        uri = params.get(uri_spec["runtimeParameter"])
    else:
        uri = next(iter(uri_spec.get("constantValue", {}).values()), None)
    if isinstance(uri, dict) and "stringValue" in uri:
        uri = uri["stringValue"]
    if not uri:
        raise KubelabError(f"importer {qname!r} has no artifact URI", task=qname)
    uri = str(uri)
    local = uri[len("file://") :] if uri.startswith("file://") else uri
    if "://" not in local and not os.path.exists(local):
        raise KubelabError(f"importer {qname!r}: {uri} does not exist", task=qname)
    now = time.time()
    run.record(qname, state="running", started_at=now, attempts=1)
    out_name = next(iter(component.get("outputDefinitions", {}).get("artifacts", {})), "artifact")
    if importer.get("downloadToWorkspace") and "://" not in local:
        local = task_io.copy_to_workspace(local, run.workspace, qname)
    inputs = {"inputs": {"parameterValues": params}}
    artifact = {
        "name": out_name,
        "type": importer.get("typeSchema", {"schemaTitle": "system.Artifact"}),
        "uri": local if "://" not in local else uri,
        # Run-time metadata values arrive as inputs `metadata`, `metadata-2`...
        "metadata": task_io.resolve_value(importer.get("metadata", {}), inputs, {}),
    }
    arts = {out_name: [artifact]}
    run.record(
        qname,
        state="succeeded",
        finished_at=time.time(),
        outputs=task_io.public_outputs({}, arts),
    )
    recording.importer(run, qname, params, arts)
    return Outcome("succeeded", {}, arts)
