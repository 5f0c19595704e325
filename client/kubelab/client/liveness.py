"""Whether the process that owns a local run is still running it.

A local run is "running" only while its owner (an engine in a server, the CLI or a
kernel; a job runner) is alive. Each process has a random instance id; while it owns
active runs it stamps their `heartbeat_at` every `HEARTBEAT_S`. A run whose owner has
gone silent for `STALE_AFTER_S`, whose owner's PID no longer exists on this host, or
whose owner PID is our own under another instance id (a pod that restarted with the
same hostname and PID) is interrupted, and the store marks it failed with
`INTERRUPTED_ERROR`. PIDs are compared only between processes that report the same
hostname, taken to share one PID namespace (a machine, a pod's container); anything
else is judged by the heartbeat alone.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubelab.client.store import RunStore

INTERRUPTED_ERROR = "interrupted: the process that ran it stopped before it finished"

# How often an owner process stamps its active runs, and after how long without a
# stamp its runs count as interrupted (generous: a busy machine must not fail live runs).
HEARTBEAT_S = 3.0
STALE_AFTER_S = 30.0


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_instance: tuple[int, str] | None = None


def instance_id() -> str:
    """This process's random id; a forked child gets its own."""
    global _instance
    if _instance is None or _instance[0] != os.getpid():
        _instance = (os.getpid(), uuid.uuid4().hex)
    return _instance[1]


def owner_alive(row: sqlite3.Row, now: float, host: str) -> bool:
    """Whether the process that owns an active local run is still running it.

    A PID alone proves nothing (a restarted pod has the same hostname and often the
    same PID); a missing PID on this host proves death, a fresh heartbeat proves life.
    """
    mine = row["owner_instance"] == instance_id()
    if row["owner_host"] == host and (
        not pid_alive(row["owner_pid"]) or (row["owner_pid"] == os.getpid() and not mine)
    ):
        return False
    if mine:
        return True
    last = row["heartbeat_at"] or row["created_at"]
    return now - last < STALE_AFTER_S


class Heartbeat:
    """The one thread per process that stamps the active runs this process owns, in
    every store where it owns some; it ends when it owns none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # store -> how many times it was (re)registered, so that a store registered
        # again while a beat found nothing to stamp is not dropped.
        self._stores: weakref.WeakKeyDictionary[RunStore, int] = weakref.WeakKeyDictionary()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def watch(self, store: RunStore) -> None:
        with self._lock:
            self._stores[store] = self._stores.get(store, 0) + 1
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._loop, daemon=True, name="kubelab-heartbeat"
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self._lock:
                stores = list(self._stores.items())
            for store, registered in stores:
                try:
                    owned = store.beat()
                except sqlite3.Error:  # locked for too long: next time; closed: drop it
                    owned = not store.closed
                if not owned:
                    with self._lock:
                        if self._stores.get(store) == registered:
                            del self._stores[store]
            with self._lock:
                if not self._stores:
                    self._thread = None
                    return


heartbeat = Heartbeat()
