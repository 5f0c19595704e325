"""Content digests of values and files: one fast hash for marshalling and the cache.

xxh3-128 (the `xxhash` package) runs at memory speed; without it (a slim step image)
BLAKE2b-128 from the standard library gives the same guarantees, slower. A digest
names its algorithm (`xxh3-128:...`), so two digests made by different ones never
compare equal by accident. Standard library only besides the optional `xxhash`:
step processes import this.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

CHUNK = 4 << 20  # hash (and write) in pieces that stay in the CPU cache

# (path, mtime_ns, size) -> digest: unchanged files are not read again.
_memo: dict[tuple[str, int, int], str] = {}


def hasher() -> tuple[str, Any]:
    """(algorithm name, a fresh hash object with update/hexdigest)."""
    try:
        import xxhash
    except ImportError:
        return "blake2b-128", hashlib.blake2b(digest_size=16)
    return "xxh3-128", xxhash.xxh3_128()


def as_bytes(piece: Any) -> memoryview:
    """A flat byte view of any buffer (an array's data, a bytes object), without a copy."""
    view = memoryview(piece)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def chunks(piece: Any) -> Iterable[memoryview]:
    view = as_bytes(piece)
    for start in range(0, len(view), CHUNK):
        yield view[start : start + CHUNK]


def digest_of(pieces: Iterable[Any]) -> str:
    """Digest of the bytes of `pieces` taken one after the other."""
    algorithm, h = hasher()
    for piece in pieces:
        for chunk in chunks(piece):
            h.update(chunk)
    return f"{algorithm}:{h.hexdigest()}"


def file_digest(path: str | os.PathLike[str]) -> str:
    """Digest of a file's contents (remembered while its mtime and size stay the same)."""
    path = os.fspath(path)
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key in _memo:
        return _memo[key]
    algorithm, h = hasher()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as file:
        while size := file.readinto(buffer):
            h.update(view[:size])
    digest = f"{algorithm}:{h.hexdigest()}"
    if len(_memo) > 50_000:  # a long-lived server must not grow without bound
        _memo.clear()
    _memo[key] = digest
    return digest
