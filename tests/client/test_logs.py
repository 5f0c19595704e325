"""The log-following contract shared by runs and jobs: bounded chunks, byte offsets,
UTF-8 never cut, `complete` only once the step has finished and all was returned."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelab.client.logs import LOG_CHUNK_BYTES, follow, read_log_file, slice_log_text
from kubelab.pipelines.errors import KubelabError

TEXT = "a" + "é✓𝄞" * (LOG_CHUNK_BYTES // 5)  # 1 + 9 bytes a round: chunks end mid-character


def test_large_log_arrives_in_chunks_that_reassemble_exactly(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    path.write_text(TEXT)
    chunks, offset = [], 0
    while True:
        chunk = read_log_file(str(path), offset, "succeeded")
        assert len(chunk["text"].encode()) <= LOG_CHUNK_BYTES
        chunks.append(chunk["text"])
        offset = chunk["offset"]
        if chunk["complete"]:
            break
    assert len(chunks) == 2 and "".join(chunks) == TEXT
    assert offset == path.stat().st_size
    assert "".join(follow(lambda o: read_log_file(str(path), o, "succeeded"))) == TEXT
    # The same text held in memory (a pod's log) is cut the same way.
    assert [slice_log_text(TEXT, o, "succeeded")["offset"] for o in (0, chunk["offset"])] == [
        len(chunks[0].encode()),
        offset,
    ]


def test_a_running_step_is_never_complete_and_a_missing_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    path.write_text("first line\n")
    chunk = read_log_file(str(path), 0, "running")
    assert chunk == {"text": "first line\n", "offset": 11, "complete": False, "state": "running"}
    assert read_log_file(str(path), 11, "running")["complete"] is False
    assert read_log_file(None, 0, "pending") == {
        "text": "",
        "offset": 0,
        "complete": False,
        "state": "pending",
    }
    assert read_log_file(str(tmp_path / "none.log"), 0, "skipped")["complete"] is True
    with pytest.raises(KubelabError, match="offset must be 0 or more, got -3"):
        read_log_file(str(path), -3, "running")
