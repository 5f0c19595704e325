"""Content-addressed cache keys for tasks.

The key covers what can change a task's result: the executor (command, args, image,
source), its environment, the input parameter values and the *content* of input
artifacts (not their paths, which differ per run). Two runs that feed the same bytes
to the same code share outputs.

What a task reads besides its inputs is only known once it ran: the task reports the
files it read under its folder (`kubelab.pipelines.task_report`) and the entry keeps
their digests; a later lookup is a hit only while those files are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from kubelab.pipelines import digests

# A directory written by the notebook marshaller carries this tag, with the digest its
# writer took of the data while writing it (`kubelab.pipelines.notebook.marshal`):
# the directory's digest is derived from the tag instead of reading the data again.
DIGEST_TAG = "kubelab-marshal.json"


def content_digest(path: str | os.PathLike[str]) -> str:
    """Digest of a file, or of a directory's relative names and file contents."""
    p = Path(path)
    if p.is_file():
        return digests.file_digest(p)
    tag = p / DIGEST_TAG
    if tag.is_file():
        text = tag.read_text()
        if '"digest"' in text:
            return "tagged:" + hashlib.sha256(text.encode()).hexdigest()
    if p.is_dir():
        h = hashlib.sha256(b"dir\0")
        for sub in sorted(p.rglob("*")):
            if sub.is_file():
                h.update(str(sub.relative_to(p)).encode() + b"\0")
                h.update(content_digest(sub).encode())
        return h.hexdigest()
    return "missing"


def artifact_fingerprint(artifact: dict[str, Any]) -> dict[str, Any]:
    uri = str(artifact.get("uri", ""))
    local = uri if "://" not in uri else None
    return {
        "type": artifact.get("type", {}).get("schemaTitle"),
        "content": content_digest(local) if local else uri,
        "metadata": artifact.get("metadata", {}),
    }


def cache_key(
    *,
    container: dict[str, Any],
    env: dict[str, str],
    parameters: dict[str, Any],
    artifacts: dict[str, list[dict[str, Any]]],
    output_definitions: dict[str, Any],
) -> str:
    material = {
        "executor": {k: container.get(k) for k in ("image", "command", "args")},
        "env": dict(sorted(env.items())),
        "parameters": parameters,
        "artifacts": {
            name: [artifact_fingerprint(a) for a in items]
            for name, items in sorted(artifacts.items())
        },
        "outputs": output_definitions,
    }
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def existing_files(outputs: dict[str, Any]) -> list[str]:
    """Local artifact paths present when outputs are cached (a Metrics artifact may have none)."""
    return [
        str(a["uri"])
        for items in outputs.get("artifacts", {}).values()
        for a in items
        if "://" not in str(a.get("uri", "")) and os.path.exists(str(a.get("uri", "")))
    ]


def outputs_still_exist(entry: dict[str, Any]) -> bool:
    """A cache hit is only valid while the artifact files it recorded are still on disk."""
    return all(os.path.exists(path) for path in entry.get("files", []))


def reads_unchanged(entry: dict[str, Any]) -> bool:
    """...and while the files the task read (its data files, its modules) are unchanged."""
    for read in entry.get("reads", []):
        try:
            if digests.file_digest(read["path"]) != read["digest"]:
                return False
        except OSError:
            return False
    return True
