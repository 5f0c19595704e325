"""The one log-following contract of runs and jobs: byte offsets, bounded chunks.

Every backend answers `logs(..., offset)` with `{text, offset, complete, state}`:
`text` is the log from byte `offset`, `offset` in the answer is where the next call
starts, and `complete` is true once the step has finished and everything was
returned. A caller follows a step by calling again from the returned offset until
`complete` (the REST API, the CLI's `-f` and `Client.stream_logs` all do exactly
that), so a line is never shown twice and a reconnecting UI resumes where it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubelab.client.store import FINAL_STATES
from kubelab.pipelines.errors import KubelabError

# Largest chunk one answer carries; the caller asks again from `offset`.
LOG_CHUNK_BYTES = 256 * 1024

LogChunk = dict[str, Any]


def check_offset(offset: int) -> None:
    if offset < 0:
        raise KubelabError(f"offset must be 0 or more, got {offset}", offset=offset)


def _decodable_prefix(data: bytes) -> bytes:
    """`data` without a UTF-8 sequence cut at its end (the rest comes next call)."""
    for cut in range(1, min(4, len(data)) + 1):
        byte = data[-cut]
        if byte & 0b1100_0000 != 0b1000_0000:  # not a continuation byte: a lead or ASCII
            expected = 1
            if byte >= 0b1111_0000:
                expected = 4
            elif byte >= 0b1110_0000:
                expected = 3
            elif byte >= 0b1100_0000:
                expected = 2
            return data if cut >= expected else data[:-cut]
    return data


def chunk_of(data: bytes, offset: int, state: str) -> LogChunk:
    """The answer for `data` (the log's bytes from `offset` on) of a step in `state`."""
    more = len(data) > LOG_CHUNK_BYTES
    data = _decodable_prefix(data[:LOG_CHUNK_BYTES])
    return {
        "text": data.decode("utf-8", errors="replace"),
        "offset": offset + len(data),
        "complete": state in FINAL_STATES and not more,
        "state": state,
    }


def read_log_file(path: str | None, offset: int, state: str) -> LogChunk:
    """A chunk of a log file on this machine; a step without a file yet has no text."""
    check_offset(offset)
    if not path or not Path(path).is_file():
        return {"text": "", "offset": offset, "complete": state in FINAL_STATES, "state": state}
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read(LOG_CHUNK_BYTES + 1)
    return chunk_of(data, offset, state)


def slice_log_text(text: str, offset: int, state: str) -> LogChunk:
    """A chunk of a whole log held in memory (e.g. a pod's log read from the cluster)."""
    check_offset(offset)
    data = text.encode("utf-8", errors="replace")
    return chunk_of(data[offset : offset + LOG_CHUNK_BYTES + 1], offset, state)


def follow(read: Callable[[int], LogChunk], *, offset: int = 0, poll: float = 0.3) -> Iterator[str]:
    """Text chunks of a step's log as they are written, until the step has finished."""
    while True:
        chunk = read(offset)
        offset = chunk["offset"]
        if chunk["text"]:
            yield chunk["text"]
        if chunk["complete"]:
            return
        if not chunk["text"]:
            time.sleep(poll)


def stream(
    read: Callable[[int], LogChunk], *, until_done: bool, poll: float = 0.3
) -> Iterator[str]:
    """A step's log text: as it is written until the step ends (`until_done`), or what
    is there now."""
    if until_done:
        return follow(read, poll=poll)

    def available() -> Iterator[str]:
        offset = 0
        while True:
            chunk = read(offset)
            if chunk["text"]:
                yield chunk["text"]
            if chunk["offset"] == offset or chunk["complete"]:
                return
            offset = chunk["offset"]

    return available()
