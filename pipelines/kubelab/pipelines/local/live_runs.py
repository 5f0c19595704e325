"""The runs executing in this process, so that callers can wait for or cancel them
directly (a run in another process is reached through the store's cancel flag).

Owns: the process-wide table of active runs and the results of recent ones.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubelab.pipelines.local.outcomes import RunResult
    from kubelab.pipelines.local.scheduling import Run

# wait_run() may be called after a quick run has already ended: keep this many results.
RECENT_RESULTS = 256

_active: dict[str, Run] = {}
_recent: dict[str, RunResult] = {}
_lock = threading.Lock()


def add(run: Run) -> None:
    with _lock:
        _active[run.run_id] = run


def finished(run: Run) -> None:
    """Move an ended run from the active table to the recent results."""
    with _lock:
        _active.pop(run.run_id, None)
        if run.result is not None:
            _recent[run.run_id] = run.result
            while len(_recent) > RECENT_RESULTS:
                _recent.pop(next(iter(_recent)))


def active(run_id: str) -> Run | None:
    with _lock:
        return _active.get(run_id)


def recent_result(run_id: str) -> RunResult | None:
    with _lock:
        return _recent.get(run_id)
