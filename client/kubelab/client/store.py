"""SQLite record of every local run and job, their steps, and the cache.

One file (WAL mode) shared by the engine, the workloads' local runners, the CLI and
the jupyter server, so a run started in one process can be listed, followed or
cancelled from another. Pipeline runs and jobs (training, tuning, serving) share the
`runs` table, told apart by `kind`; their steps (pipeline tasks, training nodes,
tuning trials, a model server) share `tasks`, so listing, logs and cancel work the
same way for all of them. Every state change is committed as it happens: after a
crash the store still tells what ran.

A local run is "running" only while the process that owns it (an engine in a server,
the CLI or a kernel; a job runner) is alive (`liveness.py` says how that is judged);
otherwise it is marked failed with the error ``interrupted: ...`` when a store opens
and whenever runs are read (we reuse the "failed" state instead of inventing an
"interrupted" one, so clients only know the six KFP-like states).

The run JSON (`get_run`) carries `warnings` (strings, e.g. a GPU step that ran on the
CPU); each step carries its own `warnings` and, for notebook steps, `marshal`: bytes
and seconds spent loading and saving values, and how many were handed on unchanged
(`linked`). A failed notebook step's `error` starts with the cell and line
(`failed in cell 3, line 1: ZeroDivisionError: ...`).

Where each run came from (source snapshot, parameters, environment, artifacts and
the steps that produced and consumed them) is ML Metadata's model, in tables of its
own: `kubelab.client.lineage` (`RunStore.lineage`). Each run JSON names its
`experiment`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubelab.client import lineage as lineage_tables
from kubelab.client import liveness
from kubelab.client.experiments import Experiments
from kubelab.client.liveness import INTERRUPTED_ERROR
from kubelab.pipelines.errors import NotFoundError

# The one state vocabulary of runs, jobs and their steps (KFP-like); every backend
# maps its engine's states onto these.
STATES = ("pending", "running", "succeeded", "failed", "skipped", "cancelled")
ACTIVE_STATES = ("pending", "running")
FINAL_STATES = ("succeeded", "failed", "skipped", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    parameters TEXT NOT NULL DEFAULT '{}',
    metrics TEXT NOT NULL DEFAULT '{}',
    outputs TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    source TEXT,
    pipeline_root TEXT,
    owner_pid INTEGER,
    owner_host TEXT,
    owner_instance TEXT,
    heartbeat_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'pipeline',
    backend TEXT NOT NULL DEFAULT 'local',
    spec TEXT NOT NULL DEFAULT '{}',
    warnings TEXT NOT NULL DEFAULT '[]',
    number INTEGER,
    origin TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at REAL,
    finished_at REAL,
    cached INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    inputs TEXT NOT NULL DEFAULT '{}',
    outputs TEXT NOT NULL DEFAULT '{}',
    cache_key TEXT,
    log_path TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    warnings TEXT NOT NULL DEFAULT '[]',
    marshal TEXT NOT NULL DEFAULT '{}',
    cached_from TEXT,
    failed_at TEXT,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    outputs TEXT NOT NULL,
    run_id TEXT,
    task TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    task TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    step INTEGER,
    value REAL NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, task, name);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);
CREATE INDEX IF NOT EXISTS runs_kind_created ON runs(kind, created_at);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
CREATE INDEX IF NOT EXISTS runs_source_number ON runs(kind, source, number);
"""

# Step metadata that the run/job JSON shows (a training node's device, a pod's name).
STEP_DETAILS = ("device", "device_count", "gpus", "ranks", "warning", "pod", "container", "node")

# What each kind of record is; `kind` is a column of `runs`.
KINDS = ("pipeline", "training", "tuning", "serving")
JOB_KINDS = KINDS[1:]


def _add_columns(conn: sqlite3.Connection, table: str, **columns: str) -> None:
    """Add the missing `columns` (name=declaration) to `table`, if the table exists
    (a missing table is created whole by the schema)."""
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    if present:
        for name, declaration in columns.items():
            if name not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def _warnings_and_marshal(conn: sqlite3.Connection) -> None:
    """Warnings of a run and of its steps (e.g. a GPU step run on the CPU), and what a
    notebook step spent marshalling its values."""
    _add_columns(conn, "runs", warnings="TEXT NOT NULL DEFAULT '[]'")
    _add_columns(
        conn, "tasks", warnings="TEXT NOT NULL DEFAULT '[]'", marshal="TEXT NOT NULL DEFAULT '{}'"
    )


def _number_runs(conn: sqlite3.Connection) -> None:
    """Runs numbered per notebook (#1, #2, ...) and where each came from; a cached
    step's origin and a failed step's notebook cell."""
    _add_columns(conn, "runs", number="INTEGER", origin="TEXT NOT NULL DEFAULT '{}'")
    _add_columns(conn, "tasks", cached_from="TEXT", failed_at="TEXT")
    conn.execute(
        "UPDATE runs SET number = (SELECT COUNT(*) FROM runs AS r WHERE r.kind = runs.kind "
        "AND r.source IS runs.source AND r.created_at <= runs.created_at)"
    )


# Changes to existing tables after the first release, applied in order to older store
# files (PRAGMA user_version counts how many ran). Append only; never edit one that
# shipped. New tables need no entry: _SCHEMA creates what is missing.
_MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    "ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'pipeline';"
    "ALTER TABLE runs ADD COLUMN backend TEXT NOT NULL DEFAULT 'local';"
    "ALTER TABLE runs ADD COLUMN spec TEXT NOT NULL DEFAULT '{}';"
    "CREATE INDEX IF NOT EXISTS runs_kind_created ON runs(kind, created_at);",
    _warnings_and_marshal,
    "ALTER TABLE runs ADD COLUMN owner_instance TEXT;"
    "ALTER TABLE runs ADD COLUMN heartbeat_at REAL;",
    _number_runs,
    # ML Metadata's tables; runs recorded before them join their file's experiment.
    lineage_tables.backfill_experiments,
)


def kubelab_home() -> Path:
    """Where kubelab keeps its state: $KUBELAB_HOME, else ~/.kubelab."""
    return Path(os.environ.get("KUBELAB_HOME") or Path.home() / ".kubelab")


def default_db_path() -> Path:
    return kubelab_home() / "kubelab.db"


def iso_time(ts: float | None) -> str | None:
    """Seconds since the epoch as the ISO 8601 time every run JSON uses (UTC, ms)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_iso = iso_time


def _argument(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def run_label(number: int | None, origin: dict[str, Any]) -> str:
    """How people tell runs apart: `#7 · n_estimators=50`, `#8 · re-run of #7`,
    `#9 · from train_forest`."""
    parts = [f"#{number}"] if number is not None else []
    if origin.get("rerun_of"):
        number = origin.get("rerun_of_number")
        parts.append(f"re-run of #{number}" if number else f"re-run of {origin['rerun_of']}")
    elif origin.get("from_step"):
        parts.append(f"from {origin['from_step']}")
    elif origin.get("arguments"):
        parts.append(", ".join(f"{k}={_argument(v)}" for k, v in origin["arguments"].items()))
    return " · ".join(parts)


def new_run_id() -> str:
    # Sortable by time, unique across processes.
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class RunStore:
    """Runs, tasks and cache entries in one SQLite file; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0  # transactions open on the thread holding the lock
        self._conn = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._lineage: lineage_tables.Lineage | None = None
        self._experiments: Experiments | None = None
        self.closed = False
        with self._lock:
            self._migrate()
        self._swept_at = 0.0
        self.mark_interrupted_runs()

    def _migrate(self) -> None:
        """Create the schema, or bring an older store file up to it."""
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        fresh = not self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'"
        ).fetchone()
        if not fresh:
            for migration in _MIGRATIONS[version:]:
                if callable(migration):
                    migration(self._conn)
                else:
                    self._conn.executescript(migration)
        # Tables and indexes that are still missing.
        self._conn.executescript(_SCHEMA + lineage_tables.SCHEMA)
        self._conn.execute(f"PRAGMA user_version={len(_MIGRATIONS)}")

    @property
    def lineage(self) -> lineage_tables.Lineage:
        """Lineage (ML Metadata's model) in this store."""
        if self._lineage is None:
            self._lineage = lineage_tables.Lineage(self)
        return self._lineage

    @property
    def experiments(self) -> Experiments:
        """The experiments runs are grouped in (contexts of the lineage tables)."""
        if self._experiments is None:
            self._experiments = Experiments(self.lineage)
        return self._experiments

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction; one opened inside another joins it (a batch of
        records commits once)."""
        with self._lock:
            cur = self._conn.cursor()
            if self._depth:
                self._depth += 1
                try:
                    yield cur
                finally:
                    self._depth -= 1
                return
            cur.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            cur.execute("COMMIT")

    _tx = transaction

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    _query = query

    # -- crash recovery -------------------------------------------------------------

    def mark_interrupted_runs(self) -> list[str]:
        """Fail local runs whose owner process is gone (see the module docstring).

        Jobs on a cluster outlive the process that submitted them: their state is read
        back from the cluster, so they are never marked here.
        """
        now, host = time.time(), socket.gethostname()
        self._swept_at = now
        rows = self._query(
            "SELECT id, owner_pid, owner_host, owner_instance, heartbeat_at, created_at "
            "FROM runs WHERE state IN ('pending','running') AND backend='local'"
        )
        dead = [r["id"] for r in rows if not liveness.owner_alive(r, now, host)]
        for run_id in dead:
            with self._tx() as cur:
                cur.execute(
                    "UPDATE runs SET state='failed', error=?, finished_at=? "
                    "WHERE id=? AND state IN ('pending','running')",
                    (INTERRUPTED_ERROR, now, run_id),
                )
                cur.execute(
                    "UPDATE tasks SET state='failed', error=?, finished_at=? "
                    "WHERE run_id=? AND state='running'",
                    (INTERRUPTED_ERROR, now, run_id),
                )
                cur.execute(
                    "UPDATE tasks SET state='cancelled' WHERE run_id=? AND state='pending'",
                    (run_id,),
                )
        return dead

    def _sweep(self) -> None:
        """Before answering what runs are doing: interrupted runs say so."""
        if time.time() - self._swept_at >= liveness.HEARTBEAT_S:
            self.mark_interrupted_runs()

    def adopt(self, run_id: str) -> None:
        """This process owns the run from now on (a model server that outlives the
        process that started it): its PID, instance id and heartbeat prove it alive."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE runs SET owner_pid=?, owner_host=?, owner_instance=?, heartbeat_at=? "
                "WHERE id=?",
                (os.getpid(), socket.gethostname(), liveness.instance_id(), time.time(), run_id),
            )
        liveness.heartbeat.watch(self)

    def beat(self) -> bool:
        """Stamp the active runs this process owns; False when it owns none here."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE runs SET heartbeat_at=? "
                "WHERE owner_instance=? AND state IN ('pending','running')",
                (time.time(), liveness.instance_id()),
            )
            return cur.rowcount > 0

    # -- runs -----------------------------------------------------------------------

    def create_run(
        self,
        name: str,
        parameters: dict[str, Any],
        *,
        run_id: str | None = None,
        source: str | None = None,
        pipeline_root: str | None = None,
        kind: str = "pipeline",
        backend: str = "local",
        spec: dict[str, Any] | None = None,
    ) -> str:
        """Record a new run (kind "pipeline") or job (training, tuning, serving)."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
        run_id = run_id or new_run_id()
        now = time.time()
        with self._tx() as cur:
            number = cur.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM runs WHERE kind=? AND source IS ?",
                (kind, source),
            ).fetchone()[0]
            cur.execute(
                "INSERT INTO runs (id, name, state, created_at, parameters, source, "
                "pipeline_root, owner_pid, owner_host, owner_instance, heartbeat_at, kind, "
                "backend, spec, number) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    name,
                    "pending",
                    now,
                    json.dumps(parameters, default=str),
                    source,
                    pipeline_root,
                    os.getpid(),
                    socket.gethostname(),
                    liveness.instance_id(),
                    now,
                    kind,
                    backend,
                    json.dumps(spec or {}, default=str),
                    number,
                ),
            )
        if backend == "local":
            liveness.heartbeat.watch(self)
        return run_id

    def _update(
        self, table: str, where: str, keys: tuple[Any, ...], fields: dict[str, Any]
    ) -> None:
        """Set columns of matching rows; dict/list values are stored as JSON."""
        if not fields:
            return
        cols = ", ".join(f"{k}=?" for k in fields)
        values = [
            json.dumps(v, default=str) if isinstance(v, dict | list) else v for v in fields.values()
        ]
        with self._tx() as cur:
            cur.execute(f"UPDATE {table} SET {cols} WHERE {where}", (*values, *keys))

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run; dict/list values are stored as JSON."""
        self._update("runs", "id=?", (run_id,), fields)

    def request_cancel(self, run_id: str) -> None:
        """Ask the engine that owns the run (maybe in another process) to cancel it."""
        self._run_row(run_id)
        with self._tx() as cur:
            cur.execute("UPDATE runs SET cancel_requested=1 WHERE id=?", (run_id,))

    def cancel_requested(self, run_id: str) -> bool:
        rows = self._query("SELECT cancel_requested FROM runs WHERE id=?", (run_id,))
        return bool(rows and rows[0]["cancel_requested"])

    def _run_row(self, run_id: str) -> sqlite3.Row:
        rows = self._query("SELECT * FROM runs WHERE id=?", (run_id,))
        if not rows:
            # Accept a unique prefix, as git does for commits: ids are long to type.
            rows = self._query(
                "SELECT * FROM runs WHERE id LIKE ? ORDER BY created_at DESC LIMIT 2",
                (run_id.replace("%", "") + "%",),
            )
            if len(rows) != 1:
                raise NotFoundError(f"no run {run_id!r}", run=run_id)
        return rows[0]

    def exists(self, run_id: str) -> bool:
        """Whether a run or job has exactly this id (no prefix matching)."""
        return bool(self._query("SELECT 1 FROM runs WHERE id=?", (run_id,)))

    def resolve_run_id(self, run_id: str) -> str:
        return str(self._run_row(run_id)["id"])

    def run_info(self, run_id: str) -> dict[str, Any]:
        """Internal columns of a run (pipeline_root, owner, outputs) for the engine/CLI."""
        row = self._run_row(run_id)
        info = dict(row)
        for key in ("parameters", "metrics", "outputs", "spec", "warnings"):
            info[key] = json.loads(info[key])
        return info

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run JSON that the REST API returns."""
        self._sweep()
        row = self._run_row(run_id)
        steps = self._query("SELECT * FROM tasks WHERE run_id=? ORDER BY seq", (row["id"],))
        experiments = self.experiments.of_runs([row["id"]])
        return self._run_json(row, steps, experiments.get(row["id"]))

    def list_runs(
        self,
        limit: int = 100,
        kinds: tuple[str, ...] = ("pipeline",),
        backend: str | None = None,
        *,
        experiment: int | str | None = None,
        include_archived: bool = False,
    ) -> list[dict[str, Any]]:
        """Newest first, each in the same JSON as get_run; pipeline runs unless `kinds`
        names job kinds too; of every backend unless `backend` names one. `experiment`
        (id or name) keeps that experiment's runs; runs of archived experiments are
        left out unless `include_archived`."""
        self._sweep()
        marks = ",".join("?" * len(kinds))
        where = f"kind IN ({marks})" + (" AND backend=?" if backend else "")
        params: tuple[Any, ...] = (*kinds, *([backend] if backend else []))
        experiment_where, experiment_params = self.experiments.runs_filter(
            experiment, include_archived=include_archived
        )
        if experiment_where:
            where += f" AND {experiment_where}"
            params += tuple(experiment_params)
        rows = self._query(
            f"SELECT * FROM runs WHERE {where} ORDER BY created_at DESC LIMIT ?",
            (*params, limit),
        )
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        steps_by_run: dict[str, list[sqlite3.Row]] = {i: [] for i in ids}
        for t in self._query(
            f"SELECT * FROM tasks WHERE run_id IN ({marks}) ORDER BY seq", tuple(ids)
        ):
            steps_by_run[t["run_id"]].append(t)
        experiments = self.experiments.of_runs(ids)
        return [self._run_json(r, steps_by_run[r["id"]], experiments.get(r["id"])) for r in rows]

    @staticmethod
    def _step_json(t: sqlite3.Row) -> dict[str, Any]:
        metadata = json.loads(t["metadata"] or "{}")
        duration = None
        if t["started_at"] is not None and t["finished_at"] is not None:
            duration = round(t["finished_at"] - t["started_at"], 3)
        return {
            "name": t["name"],
            "display_name": t["display_name"],
            "state": t["state"],
            "started_at": iso_time(t["started_at"]),
            "finished_at": iso_time(t["finished_at"]),
            "duration_s": duration,
            "cached": bool(t["cached"]),
            "attempts": t["attempts"],
            "error": t["error"],
            "cells": metadata.get("cells", []),
            "outputs": json.loads(t["outputs"] or "{}"),
            # {run, task, number, duration_s} of the run whose result a cached step reused.
            "cached_from": json.loads(t["cached_from"]) if t["cached_from"] else None,
            # {cell, line} of the notebook cell where a failed step raised.
            "failed_at": json.loads(t["failed_at"]) if t["failed_at"] else None,
            "warnings": json.loads(t["warnings"] or "[]"),
            # Notebook steps: {load_bytes, load_seconds, loaded, save_bytes, save_seconds,
            # saved, linked, cells_seconds} — values read and written, `linked` handed on
            # unchanged, and the time spent in the step's own cells.
            "marshal": json.loads(t["marshal"] or "{}"),
            # What a job's runner tells about the step (device, pod, ...), for UIs.
            **{k: metadata[k] for k in STEP_DETAILS if k in metadata},
        }

    def _run_json(
        self,
        row: sqlite3.Row,
        steps: list[sqlite3.Row],
        experiment: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        origin = json.loads(row["origin"] or "{}")
        run = {
            "id": row["id"],
            "name": row["name"],
            "number": row["number"],
            "label": run_label(row["number"], origin),
            "origin": origin,
            "kind": row["kind"],
            "backend": row["backend"],
            "state": row["state"],
            "created_at": iso_time(row["created_at"]),
            "finished_at": iso_time(row["finished_at"]),
            "parameters": json.loads(row["parameters"]),
            "metrics": json.loads(row["metrics"]),
            "outputs": json.loads(row["outputs"]),
            "error": row["error"],
            "source": row["source"],
            "warnings": json.loads(row["warnings"] or "[]"),
            "experiment": experiment["name"] if experiment else None,
            "experiment_id": experiment["id"] if experiment else None,
            "steps": [self._step_json(t) for t in steps],
        }
        if row["kind"] != "pipeline":
            run["spec"] = json.loads(row["spec"])
        return run

    def delete_run(self, run_id: str) -> None:
        """Forget a finished run or job: its row, steps and metric series (not its files)."""
        run_id = self.resolve_run_id(run_id)
        with self._tx() as cur:
            self.lineage.forget_run(cur, run_id)
            cur.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
            cur.execute("DELETE FROM tasks WHERE run_id=?", (run_id,))
            cur.execute("DELETE FROM runs WHERE id=?", (run_id,))

    # -- metric series ----------------------------------------------------------------

    def add_metrics(
        self, run_id: str, values: dict[str, float], *, task: str = "", step: int | None = None
    ) -> None:
        """Append one point per metric (e.g. the loss of an epoch, a trial's accuracy)."""
        now = time.time()
        with self._tx() as cur:
            cur.executemany(
                "INSERT INTO metrics (run_id, task, name, step, value, ts) VALUES (?,?,?,?,?,?)",
                [(run_id, task, name, step, float(v), now) for name, v in values.items()],
            )

    def metric_series(
        self, run_id: str, task: str | None = None
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """`{task: {metric: [{step, value, ts}, ...]}}` in the order they were reported."""
        sql = "SELECT task, name, step, value, ts FROM metrics WHERE run_id=?"
        params: tuple[Any, ...] = (run_id,)
        if task is not None:
            sql += " AND task=?"
            params += (task,)
        series: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for row in self._query(sql + " ORDER BY rowid", params):
            points = series.setdefault(row["task"], {}).setdefault(row["name"], [])
            points.append({"step": row["step"], "value": row["value"], "ts": row["ts"]})
        return series

    # -- tasks ----------------------------------------------------------------------

    def add_task(
        self,
        run_id: str,
        name: str,
        *,
        display_name: str | None = None,
        state: str = "pending",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        with self._tx() as cur:
            seq = cur.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM tasks WHERE run_id=?", (run_id,)
            ).fetchone()[0]
            cur.execute(
                "INSERT OR IGNORE INTO tasks (run_id, name, seq, display_name, state, metadata) "
                "VALUES (?,?,?,?,?,?)",
                (
                    run_id,
                    name,
                    seq,
                    display_name or name,
                    state,
                    json.dumps(metadata or {}, default=str),
                ),
            )

    def update_task(self, run_id: str, name: str, **fields: Any) -> None:
        self._update("tasks", "run_id=? AND name=?", (run_id, name), fields)

    def task_info(self, run_id: str, name: str) -> dict[str, Any]:
        row = self._run_row(run_id)
        run_id, noun = row["id"], "run" if row["kind"] == "pipeline" else "job"
        rows = self._query("SELECT * FROM tasks WHERE run_id=? AND name=?", (run_id, name))
        if not rows:
            rows = self._query(
                "SELECT * FROM tasks WHERE run_id=? AND display_name=?", (run_id, name)
            )
        if not rows:
            names = [
                r["name"]
                for r in self._query(
                    "SELECT name FROM tasks WHERE run_id=? ORDER BY seq", (run_id,)
                )
            ]
            raise NotFoundError(
                f"{noun} {run_id} has no step {name!r}; steps: {', '.join(names) or 'none'}",
                run=run_id,
                step=name,
            )
        info = dict(rows[0])
        for key in ("inputs", "outputs", "metadata", "marshal"):
            info[key] = json.loads(info[key] or "{}")
        info["warnings"] = json.loads(info["warnings"] or "[]")
        return info

    def task_metadata(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Step name -> the metadata recorded with it (notebook cells, step name, pod)."""
        rows = self._query("SELECT name, metadata FROM tasks WHERE run_id=?", (run_id,))
        return {r["name"]: json.loads(r["metadata"] or "{}") for r in rows}

    # -- cache ----------------------------------------------------------------------

    def cache_get(self, key: str) -> dict[str, Any] | None:
        rows = self._query("SELECT outputs FROM cache WHERE key=?", (key,))
        return json.loads(rows[0]["outputs"]) if rows else None

    def cache_origin(self, key: str) -> dict[str, Any] | None:
        """{run, task, number, duration_s} of the run that computed cache entry `key`
        (the duration is what the cache saves)."""
        rows = self._query(
            "SELECT c.run_id, c.task, r.number, t.finished_at - t.started_at AS took "
            "FROM cache AS c LEFT JOIN runs AS r ON r.id = c.run_id "
            "LEFT JOIN tasks AS t ON t.run_id = c.run_id AND t.name = c.task WHERE c.key=?",
            (key,),
        )
        if not rows or rows[0]["run_id"] is None:
            return None
        row = rows[0]
        took = round(row["took"], 3) if row["took"] is not None else None
        return {
            "run": row["run_id"],
            "task": row["task"],
            "number": row["number"],
            "duration_s": took,
        }

    def cache_put(self, key: str, outputs: dict[str, Any], run_id: str, task: str) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO cache (key, outputs, run_id, task, created_at) "
                "VALUES (?,?,?,?,?)",
                (key, json.dumps(outputs, default=str), run_id, task, time.time()),
            )

    def cache_delete(self, key: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM cache WHERE key=?", (key,))
