"""Content-addressed cache keys for tasks.

The key covers what can change a task's result: the executor (command, args, image,
source), its environment, the input parameter values and the *content* of input
artifacts (not their paths, which differ per run). Two runs that feed the same bytes
to the same code share outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

# (path, mtime, size) -> digest: unchanged inputs are not re-read on every run.
_digest_memo: dict[tuple[str, int, int], str] = {}


def content_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, or of a directory's relative names and file contents."""
    p = Path(path)
    if p.is_file():
        st = p.stat()
        memo_key = (str(p), st.st_mtime_ns, st.st_size)
        if memo_key in _digest_memo:
            return _digest_memo[memo_key]
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        if len(_digest_memo) > 50_000:  # a long-lived server must not grow without bound
            _digest_memo.clear()
        _digest_memo[memo_key] = digest
        return digest
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
