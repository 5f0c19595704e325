"""What a local run tells the lineage store: where it came from and what each step did.

Owns: `start` (snapshots of the source and the compiled pipeline, git state, the
environment, the user, the experiment; called as the run is set up), `step` and
`importer` (a step's execution: its input parameters, its code, its image, the
artifacts and files it read and wrote, with content digests), `finish`.

Digests reuse what the engine already computed: `cache.content_digest` remembers
files by (path, mtime, size), so the inputs hashed for the cache key are not read
again, and an output recorded here is not hashed again when the next step's cache
key needs it. A cached step's outputs keep the digests recorded when they were made.

Recording never breaks a run: a failure here is printed and the run goes on.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.client import provenance
from kubelab.client.lineage import (
    CACHED,
    COMPLETE,
    FILE,
    PIPELINE_SPEC,
    STATE_OF_RUN,
    ArtifactRecord,
)
from kubelab.pipelines.local.cache import content_digest

if TYPE_CHECKING:
    from kubelab.pipelines.local.ir import PythonExecutor
    from kubelab.pipelines.local.scheduling import Run

# A notebook value's directory carries this tag (type and marshaller) next to its data.
MARSHAL_TAG = "kubelab-marshal.json"


@dataclass
class RunRecording:
    """What steps of one run need to record themselves."""

    home: Path
    # A notebook source: code of each cell, and the cells every step runs first.
    cells: dict[int, str] = field(default_factory=dict)
    prelude: list[int] = field(default_factory=list)


def _never_fails(function: Callable[..., None]) -> Callable[..., None]:
    """A recorder whose failure is printed, never raised into the run."""

    @functools.wraps(function)
    def recorder(run: Run, *args: Any, **kwargs: Any) -> None:
        try:
            function(run, *args, **kwargs)
        except Exception:
            print(f"kubelab: could not record the lineage of run {run.run_id}:", flush=True)
            traceback.print_exc()

    return recorder


def normal_digest(digest: str) -> str:
    """Digests name their algorithm (`sha256:...`); a bare hex string is sha256."""
    if not digest or digest == "missing" or ":" in digest:
        return "" if digest == "missing" else digest
    return f"sha256:{digest}"


# -- the run ---------------------------------------------------------------------------


@_never_fails
def start(
    run: Run,
    *,
    name: str,
    source: str | None,
    experiment: str | None,
    reproduces: str | None = None,
) -> None:
    """The run starts: its source, compiled pipeline, environment, user, experiment."""
    home = run.store.path.parent
    recording = RunRecording(home)
    content, git = None, None
    if reproduces:
        # What ran then, not what the file holds now.
        original = run.store.lineage.run_facts(reproduces).get("source") or {}
        if original.get("snapshot") and os.path.isfile(original["snapshot"]):
            content, git = Path(original["snapshot"]).read_bytes(), original.get("git")
    properties, facts = provenance.capture(home, source=source, content=content, git=git)
    properties.update(name=name, parameters=run.arguments, backend="local")
    if reproduces:
        properties["reproduces"] = reproduces
    if "source" in facts and facts["source"].properties.get("format") == "ipynb":
        try:
            notebook = json.loads(Path(facts["source"].uri).read_bytes())
            recording.cells, recording.prelude = provenance.notebook_cells(notebook)
        except (OSError, ValueError):
            pass
    spec = json.dumps(run.ir, sort_keys=True, default=str).encode()
    digest, snapshot = provenance.snapshot_bytes(home, spec, ".json")
    facts["pipeline_spec"] = ArtifactRecord(PIPELINE_SPEC, str(snapshot), digest, name)
    run.store.lineage.record_run(
        run.run_id,
        experiment=experiment or provenance.default_experiment(source),
        properties=properties,
        facts=facts,
    )
    run.recording = recording


@_never_fails
def finish(run: Run, state: str) -> None:
    if run.recording is not None:
        run.store.lineage.finish_run(run.run_id, state)


# -- steps -----------------------------------------------------------------------------


def artifact_record(
    artifact: dict[str, Any], known: dict[str, str] | None = None
) -> ArtifactRecord:
    """A KFP runtime artifact (`{name, type, uri, metadata}`) with its content digest.

    `known` maps URIs to digests recorded earlier (a cached step's outputs)."""
    uri = str(artifact.get("uri") or "")
    type_name = (artifact.get("type") or {}).get("schemaTitle") or "system.Artifact"
    metadata = artifact.get("metadata") or {}
    properties: dict[str, Any] = {"metadata": metadata} if metadata else {}
    local = uri[len("file://") :] if uri.startswith("file://") else uri
    on_disk = "://" not in local and bool(local) and os.path.exists(local)
    digest = ""
    if known and uri in known:
        digest = known[uri]
    elif type_name == "system.Metrics" or (metadata and not on_disk):
        # Metrics live in the metadata: their digest is that of the values.
        digest = provenance.sha256_digest(json.dumps(metadata, sort_keys=True).encode())
    elif on_disk:
        digest = normal_digest(content_digest(local))
    tag = Path(local, MARSHAL_TAG)
    if on_disk and tag.is_file():
        try:
            marshalled = json.loads(tag.read_text())
            properties["value_type"] = marshalled.get("type")
            properties["marshaller"] = marshalled.get("marshaller")
        except (OSError, ValueError):
            pass
    return ArtifactRecord(type_name, uri, digest, str(artifact.get("name") or ""), properties)


def _events(
    artifacts: dict[str, list[dict[str, Any]]], known: dict[str, str] | None = None
) -> list[tuple[str, int, ArtifactRecord]]:
    return [
        (name, index, artifact_record(art, known))
        for name, items in sorted(artifacts.items())
        for index, art in enumerate(items)
    ]


def _file_events(
    files: list[dict[str, Any]],
    workdir: str,
    verb: str,
    declared: dict[str, list[dict[str, Any]]],
) -> list[tuple[str, int, ArtifactRecord]]:
    """Files a step read or wrote besides its declared artifacts (reported by the task),
    as File artifacts named `read:<path>` / `wrote:<path>`; a file inside a declared
    artifact is that artifact already."""
    inside = [
        os.path.realpath(str(a.get("uri") or "")) for items in declared.values() for a in items
    ]
    events = []
    for file in files:
        path = str(file.get("path", ""))
        real = os.path.realpath(path)
        if any(real == d or real.startswith(d + os.sep) for d in inside if d):
            continue
        try:
            label = os.path.relpath(path, workdir)
        except ValueError:
            label = path
        if label.startswith(".."):
            label = path
        record = ArtifactRecord(FILE, path, normal_digest(str(file.get("digest", ""))), label)
        events.append((f"{verb}:{label}", 0, record))
    return events


def step_code(
    recording: RunRecording,
    metadata: dict[str, Any],
    container: dict[str, Any],
    python: PythonExecutor | None,
) -> str:
    """What the step runs, as a diff should show it: a notebook step's cells, a Python
    component's source, a container's image and command line."""
    cells = metadata.get("cells")
    if cells and recording.cells:
        return provenance.step_code(recording.cells, recording.prelude, list(cells))
    if python is not None:
        return python.source
    command = [*container.get("command", []), *container.get("args", [])]
    return f"# image: {container.get('image', '')}\n{shlex.join(str(c) for c in command)}\n"


@_never_fails
def step(
    run: Run,
    qname: str,
    *,
    state: str,
    container: dict[str, Any],
    python: PythonExecutor | None,
    parameters: dict[str, Any],
    inputs: dict[str, list[dict[str, Any]]],
    outputs: dict[str, list[dict[str, Any]]] | None = None,
    output_parameters: dict[str, Any] | None = None,
    cached: bool = False,
    cache_key: str | None = None,
    reads: list[dict[str, Any]] | None = None,
    writes: list[dict[str, Any]] | None = None,
) -> None:
    """Record a step that ended (`state` as the store names it) or came from the cache;
    `reads` and `writes` are the files the task reported reading and writing."""
    if run.recording is None:
        return
    outputs = outputs or {}
    recording = run.recording
    metadata = run.task_metadata.get(qname, {})
    code = step_code(recording, metadata, container, python)
    code_digest, code_path = provenance.snapshot_text(recording.home, code, ".py")
    properties: dict[str, Any] = {
        "inputs": parameters,
        "outputs": output_parameters or {},
        "cached": cached,
        "cache_key": cache_key,
        "code_digest": code_digest,
        "code": str(code_path),
        "image": container.get("image"),
    }
    for key in ("step", "cells"):
        if key in metadata:
            properties[key] = metadata[key]
    if python is not None and python.packages:
        properties["packages"] = list(python.packages)
    known = None
    if cached:
        # The outputs were hashed when the run that made them recorded them.
        known = {}
        for items in outputs.values():
            for art in items:
                uri = str(art.get("uri") or "")
                found = run.store.lineage.find_artifacts(uri=uri) if uri else []
                if found and found[0]["digest"]:
                    known[uri] = found[0]["digest"]
    run.store.lineage.record_step(
        run.run_id,
        qname,
        state=CACHED if cached else STATE_OF_RUN.get(state, state.upper()),
        properties=properties,
        inputs=_events(inputs) + _file_events(reads or [], run.workdir, "read", inputs),
        outputs=_events(outputs, known) + _file_events(writes or [], run.workdir, "wrote", outputs),
    )


@_never_fails
def importer(
    run: Run, qname: str, parameters: dict[str, Any], outputs: dict[str, list[dict[str, Any]]]
) -> None:
    """An importer task: its one output is data from outside the pipeline."""
    if run.recording is None:
        return
    run.store.lineage.record_step(
        run.run_id,
        qname,
        state=COMPLETE,
        properties={"inputs": parameters, **run.task_metadata.get(qname, {})},
        outputs=_events(outputs),
        importer=True,
    )
