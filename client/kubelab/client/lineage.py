"""Lineage: ML Metadata's model (MLMD, what Kubeflow Pipelines records) in the run store.

The same nouns and names as MLMD, so the questions asked here can be asked of KFP's
MLMD on a cluster (`ml-metadata` itself pins protobuf<5 and cannot share kubelab's
environment, so the model lives in our SQLite store):

| MLMD            | here |
|-----------------|------|
| Type            | `types`: a name (`system.Model`, `system.ContainerExecution`, ...) and its kind |
| Artifact        | `artifacts`: a type, a URI, a content digest, properties |
| Execution       | `executions`: a run as a whole (`system.DAGExecution`, or `kubelab.Job` for a job) and each step (`system.ContainerExecution`, `system.ImporterExecution`), with its last known state |
| Context         | `contexts`: a run (`system.PipelineRun`, or `kubelab.Job`) and an experiment (`kubelab.Experiment`) |
| Event           | `events`: an execution's INPUT or OUTPUT artifact, by input/output name |
| Attribution, Association, ParentContext | `attributions` (artifact in a run), `associations` (execution in a run), `parent_contexts` (run in an experiment) |

What a run records (`record_run`): its execution, with the run's parameters, user,
backend and source facts (path, git commit, dirty flag) as properties and three
INPUT artifacts: the source snapshot (`kubelab.Source`), the compiled pipeline
(`kubelab.PipelineSpec`) and the Python environment (`kubelab.Environment`, whose
distribution list is stored once per digest). Each step (`record_step`) adds an
execution with its input parameters, code digest and image, INPUT events for the
artifacts and files it read, OUTPUT events for the artifacts it wrote. An artifact is
identified by (type, URI, digest): a step consuming an upstream output, or a cached
step reusing one, links to the same artifact, so "who produced this, from what" is a
walk over events (`lineage`).

The run and its steps stay in `runs` / `tasks` (their state is the truth); these
tables say where things came from. Experiments are contexts too (`experiments.py`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.errors import KubelabError, NotFoundError

if TYPE_CHECKING:
    from kubelab.client.store import RunStore

# Type kinds (MLMD's TypeKind).
ARTIFACT, EXECUTION, CONTEXT = "artifact", "execution", "context"

# Contexts.
RUN_CONTEXT = "system.PipelineRun"
JOB_CONTEXT = "kubelab.Job"
EXPERIMENT = "kubelab.Experiment"
# Executions.
RUN_EXECUTION = "system.DAGExecution"
JOB_EXECUTION = "kubelab.Job"
STEP_EXECUTION = "system.ContainerExecution"
IMPORTER_EXECUTION = "system.ImporterExecution"
# Artifacts besides the KFP schema titles (system.Dataset, system.Model, ...).
SOURCE = "kubelab.Source"
PIPELINE_SPEC = "kubelab.PipelineSpec"
ENVIRONMENT = "kubelab.Environment"
FILE = "kubelab.File"  # a file a step read that was not one of its declared inputs
RUN_FACTS = (SOURCE, PIPELINE_SPEC, ENVIRONMENT)

# Event types and execution states (MLMD's Event.Type and Execution.State names).
INPUT, OUTPUT = "INPUT", "OUTPUT"
NEW, RUNNING, COMPLETE, FAILED, CACHED, CANCELED = (
    "NEW",
    "RUNNING",
    "COMPLETE",
    "FAILED",
    "CACHED",
    "CANCELED",
)
STATE_OF_RUN = {
    "pending": NEW,
    "running": RUNNING,
    "succeeded": COMPLETE,
    "failed": FAILED,
    "cancelled": CANCELED,
    "skipped": CANCELED,
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS types (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (kind, name)
);
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY,
    type_id INTEGER NOT NULL REFERENCES types(id),
    name TEXT NOT NULL DEFAULT '',
    uri TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL DEFAULT '',
    properties TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS artifacts_identity ON artifacts(type_id, uri, digest);
CREATE INDEX IF NOT EXISTS artifacts_digest ON artifacts(digest);
CREATE INDEX IF NOT EXISTS artifacts_uri ON artifacts(uri);
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY,
    type_id INTEGER NOT NULL REFERENCES types(id),
    name TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS contexts (
    id INTEGER PRIMARY KEY,
    type_id INTEGER NOT NULL REFERENCES types(id),
    name TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    UNIQUE (type_id, name)
);
CREATE INDEX IF NOT EXISTS contexts_name ON contexts(name);
CREATE TABLE IF NOT EXISTS events (
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    execution_id INTEGER NOT NULL REFERENCES executions(id),
    type TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    idx INTEGER NOT NULL DEFAULT 0,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_artifact ON events(artifact_id, type);
CREATE INDEX IF NOT EXISTS events_execution ON events(execution_id);
CREATE TABLE IF NOT EXISTS attributions (
    context_id INTEGER NOT NULL REFERENCES contexts(id),
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    PRIMARY KEY (context_id, artifact_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS attributions_artifact ON attributions(artifact_id);
CREATE TABLE IF NOT EXISTS associations (
    context_id INTEGER NOT NULL REFERENCES contexts(id),
    execution_id INTEGER NOT NULL REFERENCES executions(id),
    PRIMARY KEY (context_id, execution_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS associations_execution ON associations(execution_id);
CREATE TABLE IF NOT EXISTS parent_contexts (
    child_id INTEGER NOT NULL REFERENCES contexts(id),
    parent_id INTEGER NOT NULL REFERENCES contexts(id),
    PRIMARY KEY (child_id, parent_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS parent_contexts_parent ON parent_contexts(parent_id);
"""


def create_tables(conn: sqlite3.Connection) -> None:
    """The lineage tables (a fresh store gets them with the rest of the schema)."""
    conn.executescript(SCHEMA)


def backfill_experiments(conn: sqlite3.Connection) -> None:
    """Migration: runs recorded before lineage get their run context, in the experiment
    of their source file (or "Default"), so `experiments list` covers them too."""
    from kubelab.client.provenance import default_experiment

    create_tables(conn)
    now = time.time()

    def type_id(name: str, kind: str) -> int:
        conn.execute("INSERT OR IGNORE INTO types (name, kind) VALUES (?,?)", (name, kind))
        return conn.execute(
            "SELECT id FROM types WHERE kind=? AND name=?", (kind, name)
        ).fetchone()[0]

    experiment_type = type_id(EXPERIMENT, CONTEXT)
    for run_id, kind, source, created in conn.execute(
        "SELECT id, kind, source, created_at FROM runs"
    ).fetchall():
        context_type = type_id(RUN_CONTEXT if kind == "pipeline" else JOB_CONTEXT, CONTEXT)
        conn.execute(
            "INSERT OR IGNORE INTO contexts (type_id, name, created_at) VALUES (?,?,?)",
            (context_type, run_id, created),
        )
        name = default_experiment(source)
        conn.execute(
            "INSERT OR IGNORE INTO contexts (type_id, name, properties, created_at) "
            "VALUES (?,?,?,?)",
            (experiment_type, name, json.dumps({"archived": False}), now),
        )
        conn.execute(
            "INSERT OR IGNORE INTO parent_contexts (child_id, parent_id) "
            "SELECT c.id, e.id FROM contexts c, contexts e "
            "WHERE c.type_id=? AND c.name=? AND e.type_id=? AND e.name=?",
            (context_type, run_id, experiment_type, name),
        )


@dataclass
class ArtifactRecord:
    """An artifact as a recorder hands it in; (type, uri, digest) identifies it."""

    type: str
    uri: str = ""
    digest: str = ""
    name: str = ""
    properties: dict[str, Any] = field(default_factory=dict)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))


class Lineage:
    """Record and query the lineage tables of one `RunStore` (its connection and lock)."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._type_ids: dict[tuple[str, str], int] = {}
        self._type_names: dict[int, str] = {}

    # -- types ----------------------------------------------------------------------------

    def type_id(self, name: str, kind: str) -> int:
        key = (kind, name)
        if key not in self._type_ids:
            with self.store.transaction() as cur:
                cur.execute("INSERT OR IGNORE INTO types (name, kind) VALUES (?,?)", (name, kind))
                found = cur.execute(
                    "SELECT id FROM types WHERE kind=? AND name=?", (kind, name)
                ).fetchone()[0]
            self._type_ids[key] = found
            self._type_names[found] = name
        return self._type_ids[key]

    def type_name(self, type_id: int) -> str:
        if type_id not in self._type_names:
            for row in self.store.query("SELECT id, name, kind FROM types"):
                self._type_names[row["id"]] = row["name"]
                self._type_ids[(row["kind"], row["name"])] = row["id"]
        return self._type_names.get(type_id, "unknown")

    # -- writing --------------------------------------------------------------------------

    def context(self, cur: sqlite3.Cursor, type_name: str, name: str, properties: Any) -> int:
        type_id = self.type_id(type_name, CONTEXT)
        cur.execute(
            "INSERT OR IGNORE INTO contexts (type_id, name, properties, created_at) "
            "VALUES (?,?,?,?)",
            (type_id, name, json.dumps(properties, default=str), time.time()),
        )
        return cur.execute(
            "SELECT id FROM contexts WHERE type_id=? AND name=?", (type_id, name)
        ).fetchone()[0]

    def _artifact(self, cur: sqlite3.Cursor, record: ArtifactRecord) -> int:
        """The id of the artifact (type, uri, digest), recorded on first sight."""
        type_id = self.type_id(record.type, ARTIFACT)
        row = cur.execute(
            "SELECT id FROM artifacts WHERE type_id=? AND uri=? AND digest=?",
            (type_id, record.uri, record.digest),
        ).fetchone()
        if row is not None:
            return int(row[0])
        cur.execute(
            "INSERT INTO artifacts (type_id, name, uri, digest, properties, created_at) "
            "VALUES (?,?,?,?,?,?)",
            (
                type_id,
                record.name,
                record.uri,
                record.digest,
                json.dumps(record.properties, default=str),
                time.time(),
            ),
        )
        return int(cur.lastrowid or 0)

    def _execution(
        self,
        cur: sqlite3.Cursor,
        context_id: int,
        type_name: str,
        name: str,
        state: str,
        properties: dict[str, Any],
        events: Iterable[tuple[str, str, int, ArtifactRecord]],
    ) -> int:
        now = time.time()
        cur.execute(
            "INSERT INTO executions (type_id, name, state, properties, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?)",
            (
                self.type_id(type_name, EXECUTION),
                name,
                state,
                json.dumps(properties, default=str),
                now,
                now,
            ),
        )
        execution_id = int(cur.lastrowid or 0)
        cur.execute(
            "INSERT INTO associations (context_id, execution_id) VALUES (?,?)",
            (context_id, execution_id),
        )
        for event_type, event_name, index, record in events:
            artifact_id = self._artifact(cur, record)
            cur.execute(
                "INSERT INTO events (artifact_id, execution_id, type, name, idx, ts) "
                "VALUES (?,?,?,?,?,?)",
                (artifact_id, execution_id, event_type, event_name, index, now),
            )
            cur.execute(
                "INSERT OR IGNORE INTO attributions (context_id, artifact_id) VALUES (?,?)",
                (context_id, artifact_id),
            )
        return execution_id

    def record_run(
        self,
        run_id: str,
        *,
        kind: str = "pipeline",
        experiment: str,
        properties: dict[str, Any],
        facts: dict[str, ArtifactRecord],
    ) -> None:
        """A run (or job) starts: its context in `experiment` and its execution, with the
        run's facts (source, pipeline spec, environment) as INPUT artifacts."""
        context_type = RUN_CONTEXT if kind == "pipeline" else JOB_CONTEXT
        with self.store.transaction() as cur:
            context_id = self.context(cur, context_type, run_id, {})
            experiment_id = self.context(cur, EXPERIMENT, experiment, {"archived": False})
            cur.execute(
                "INSERT OR IGNORE INTO parent_contexts (child_id, parent_id) VALUES (?,?)",
                (context_id, experiment_id),
            )
            self._execution(
                cur,
                context_id,
                RUN_EXECUTION if kind == "pipeline" else JOB_EXECUTION,
                run_id,
                RUNNING,
                {"kind": kind, **properties},
                [(INPUT, name, 0, record) for name, record in facts.items()],
            )

    def record_step(
        self,
        run_id: str,
        task: str,
        *,
        state: str,
        properties: dict[str, Any],
        inputs: Iterable[tuple[str, int, ArtifactRecord]] = (),
        outputs: Iterable[tuple[str, int, ArtifactRecord]] = (),
        importer: bool = False,
    ) -> int:
        """A step ended (or was served from the cache): its execution and events."""
        events = [(INPUT, *event) for event in inputs] + [(OUTPUT, *event) for event in outputs]
        with self.store.transaction() as cur:
            context_id = self._run_context_id(cur, run_id)
            return self._execution(
                cur,
                context_id,
                IMPORTER_EXECUTION if importer else STEP_EXECUTION,
                task,
                state,
                {"task": task, **properties},
                events,
            )

    def finish_run(self, run_id: str, state: str) -> None:
        """The run's execution takes the run's final state."""
        with self.store.transaction() as cur:
            cur.execute(
                "UPDATE executions SET state=?, updated_at=? WHERE id IN ("
                "SELECT e.id FROM executions e JOIN associations a ON a.execution_id=e.id "
                "WHERE a.context_id=? AND e.type_id IN (?,?))",
                (
                    STATE_OF_RUN.get(state, state.upper()),
                    time.time(),
                    self._run_context_id(cur, run_id),
                    self.type_id(RUN_EXECUTION, EXECUTION),
                    self.type_id(JOB_EXECUTION, EXECUTION),
                ),
            )

    def _run_context_id(self, cur: sqlite3.Cursor, run_id: str) -> int:
        row = cur.execute(
            "SELECT id FROM contexts WHERE name=? AND type_id IN (?,?)",
            (run_id, self.type_id(RUN_CONTEXT, CONTEXT), self.type_id(JOB_CONTEXT, CONTEXT)),
        ).fetchone()
        if row is None:
            # A run recorded before lineage existed: it joins the default experiment.
            from kubelab.client.provenance import DEFAULT_EXPERIMENT

            info = cur.execute("SELECT kind FROM runs WHERE id=?", (run_id,)).fetchone()
            kind = info[0] if info else "pipeline"
            context_id = self.context(
                cur, RUN_CONTEXT if kind == "pipeline" else JOB_CONTEXT, run_id, {}
            )
            experiment_id = self.context(cur, EXPERIMENT, DEFAULT_EXPERIMENT, {"archived": False})
            cur.execute(
                "INSERT OR IGNORE INTO parent_contexts (child_id, parent_id) VALUES (?,?)",
                (context_id, experiment_id),
            )
            return context_id
        return int(row[0])

    def forget_run(self, cur: sqlite3.Cursor, run_id: str) -> None:
        """Remove a deleted run's context, executions and events, and the artifacts that
        nothing else refers to (shared snapshots and environments stay)."""
        row = cur.execute(
            "SELECT id FROM contexts WHERE name=? AND type_id IN (?,?)",
            (run_id, self.type_id(RUN_CONTEXT, CONTEXT), self.type_id(JOB_CONTEXT, CONTEXT)),
        ).fetchone()
        if row is None:
            return
        context_id = row[0]
        executions = [
            r[0]
            for r in cur.execute(
                "SELECT execution_id FROM associations WHERE context_id=?", (context_id,)
            ).fetchall()
        ]
        artifacts = {
            r[0]
            for r in cur.execute(
                "SELECT artifact_id FROM attributions WHERE context_id=?", (context_id,)
            ).fetchall()
        }
        marks = _marks(executions)
        cur.execute(f"DELETE FROM events WHERE execution_id IN ({marks})", executions)
        cur.execute("DELETE FROM associations WHERE context_id=?", (context_id,))
        cur.execute(f"DELETE FROM executions WHERE id IN ({marks})", executions)
        cur.execute("DELETE FROM attributions WHERE context_id=?", (context_id,))
        cur.execute("DELETE FROM parent_contexts WHERE child_id=?", (context_id,))
        cur.execute("DELETE FROM contexts WHERE id=?", (context_id,))
        for artifact_id in artifacts:
            if not cur.execute(
                "SELECT 1 FROM events WHERE artifact_id=? LIMIT 1", (artifact_id,)
            ).fetchone():
                cur.execute("DELETE FROM attributions WHERE artifact_id=?", (artifact_id,))
                cur.execute("DELETE FROM artifacts WHERE id=?", (artifact_id,))

    # -- reading --------------------------------------------------------------------------

    def _artifact_json(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "type": self.type_name(row["type_id"]),
            "name": row["name"],
            "uri": row["uri"],
            "digest": row["digest"],
            "properties": _loads(row["properties"]),
        }

    def _execution_json(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "type": self.type_name(row["type_id"]),
            "name": row["name"],
            "state": row["state"],
            "properties": _loads(row["properties"]),
        }

    def run_records(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What lineage knows of each run: `{run_id: {execution, facts, steps}}` where
        `execution` is the run's own (parameters, user, source facts...), `facts` its
        source / pipeline spec / environment artifacts by event name, and `steps`
        `{task: {execution, inputs: [...], outputs: [...]}}` (events with artifacts)."""
        if not run_ids:
            return {}
        context_types = (self.type_id(RUN_CONTEXT, CONTEXT), self.type_id(JOB_CONTEXT, CONTEXT))
        rows = self.store.query(
            "SELECT c.name AS run, e.* FROM contexts c JOIN associations a ON a.context_id=c.id "
            "JOIN executions e ON e.id=a.execution_id "
            f"WHERE c.name IN ({_marks(run_ids)}) AND c.type_id IN (?,?) ORDER BY e.id",
            (*run_ids, *context_types),
        )
        run_types = {self.type_id(RUN_EXECUTION, EXECUTION), self.type_id(JOB_EXECUTION, EXECUTION)}
        records: dict[str, dict[str, Any]] = {
            r: {"execution": None, "facts": {}, "steps": {}} for r in run_ids
        }
        by_execution: dict[int, dict[str, Any]] = {}
        for row in rows:
            record = records[row["run"]]
            execution = self._execution_json(row)
            if row["type_id"] in run_types:
                record["execution"] = execution
                by_execution[row["id"]] = record["facts"]
            else:
                # A step recorded twice (an earlier attempt of run-from) keeps the last.
                step = {"execution": execution, "inputs": [], "outputs": []}
                record["steps"][row["name"]] = step
                by_execution[row["id"]] = step
        if by_execution:
            ids = list(by_execution)
            for event in self.store.query(
                "SELECT ev.execution_id AS execution, ev.type AS event, ev.name AS event_name, "
                "ev.idx AS idx, a.* FROM events ev JOIN artifacts a ON a.id=ev.artifact_id "
                f"WHERE ev.execution_id IN ({_marks(ids)}) ORDER BY ev.rowid",
                tuple(ids),
            ):
                target = by_execution[event["execution"]]
                artifact = self._artifact_json(event)
                if "execution" not in target:  # the run's facts
                    target[event["event_name"]] = artifact
                    continue
                artifact["event"] = event["event_name"]
                artifact["index"] = event["idx"]
                target["inputs" if event["event"] == INPUT else "outputs"].append(artifact)
        return records

    def run_record(self, run_id: str) -> dict[str, Any]:
        return self.run_records([run_id])[run_id]

    def find_artifacts(
        self, *, artifact_id: int | None = None, uri: str | None = None, digest: str | None = None
    ) -> list[dict[str, Any]]:
        """Artifacts by id, URI or digest (a digest without its `algorithm:` prefix works
        too), the newest first."""
        if artifact_id is not None:
            rows = self.store.query("SELECT * FROM artifacts WHERE id=?", (artifact_id,))
        elif uri is not None:
            rows = self.store.query(
                "SELECT * FROM artifacts WHERE uri=? ORDER BY id DESC LIMIT 50", (uri,)
            )
        elif digest:
            rows = self.store.query(
                "SELECT * FROM artifacts WHERE digest=? OR digest LIKE ? ORDER BY id DESC LIMIT 50",
                (digest, "%:" + digest.split(":", 1)[-1]),
            )
        else:
            raise KubelabError("name an artifact by id, URI or digest")
        return [self._artifact_json(r) for r in rows]

    def _events(self, artifact_ids: Iterable[int], event_type: str) -> list[sqlite3.Row]:
        ids = list(artifact_ids)
        if not ids:
            return []
        return self.store.query(
            "SELECT ev.artifact_id, ev.execution_id, ev.name, ev.idx, ev.type, e.state, "
            "c.name AS run FROM events ev JOIN executions e ON e.id=ev.execution_id "
            "JOIN associations a ON a.execution_id=e.id JOIN contexts c ON c.id=a.context_id "
            f"WHERE ev.artifact_id IN ({_marks(ids)}) AND ev.type=? ORDER BY ev.rowid",
            (*ids, event_type),
        )

    def lineage(self, artifact_id: int, *, max_depth: int = 100) -> dict[str, Any]:
        """The upstream graph of an artifact: the step that produced it, that step's
        inputs and their producers, back to each run's source, parameters and
        environment; and the steps that consumed it.

        A cached step re-uses the outputs of the execution that computed them: the
        producer shown is that original execution (the cached one is listed too).
        """
        start = self.find_artifacts(artifact_id=artifact_id)
        if not start:
            raise NotFoundError(f"no artifact {artifact_id}", artifact=artifact_id)
        artifacts: dict[int, dict[str, Any]] = {artifact_id: start[0]}
        executions: dict[int, dict[str, Any]] = {}
        edges: list[dict[str, Any]] = []
        frontier = {artifact_id}
        depth = 0
        while frontier and depth < max_depth:
            depth += 1
            producers: dict[int, list[sqlite3.Row]] = {}
            for event in self._events(frontier, OUTPUT):
                producers.setdefault(event["artifact_id"], []).append(event)
            step_ids: set[int] = set()
            for art, events in producers.items():
                computed = [e for e in events if e["state"] != CACHED] or events
                for event in computed[:1]:
                    edges.append(
                        {
                            "artifact": art,
                            "execution": event["execution_id"],
                            "type": OUTPUT,
                            "name": event["name"],
                        }
                    )
                    artifacts[art]["producer"] = event["execution_id"]
                    step_ids.add(event["execution_id"])
                artifacts[art]["reused_by"] = [
                    e["execution_id"] for e in events if e["state"] == CACHED
                ]
            step_ids -= executions.keys()
            if not step_ids:
                break
            for row in self.store.query(
                "SELECT e.*, c.name AS run FROM executions e "
                "JOIN associations a ON a.execution_id=e.id JOIN contexts c ON c.id=a.context_id "
                f"WHERE e.id IN ({_marks(list(step_ids))})",
                tuple(step_ids),
            ):
                executions[row["id"]] = {**self._execution_json(row), "run": row["run"]}
            frontier = set()
            for event in self.store.query(
                "SELECT ev.execution_id, ev.name, ev.idx, a.* FROM events ev "
                "JOIN artifacts a ON a.id=ev.artifact_id "
                f"WHERE ev.execution_id IN ({_marks(list(step_ids))}) AND ev.type=? "
                "ORDER BY ev.rowid",
                (*step_ids, INPUT),
            ):
                edges.append(
                    {
                        "artifact": event["id"],
                        "execution": event["execution_id"],
                        "type": INPUT,
                        "name": event["name"],
                    }
                )
                if event["id"] not in artifacts:
                    artifacts[event["id"]] = self._artifact_json(event)
                    frontier.add(event["id"])
        consumers = [
            {"execution": e["execution_id"], "run": e["run"], "name": e["name"]}
            for e in self._events([artifact_id], INPUT)
        ]
        for consumer in consumers:
            if consumer["execution"] not in executions:
                row = self.store.query(
                    "SELECT * FROM executions WHERE id=?", (consumer["execution"],)
                )[0]
                consumer["step"] = row["name"]
        runs = sorted({e["run"] for e in executions.values()})
        return {
            "artifact": artifacts[artifact_id],
            "artifacts": list(artifacts.values()),
            "executions": list(executions.values()),
            "edges": edges,
            "consumers": consumers,
            "runs": {run: self.run_facts(run) for run in runs},
        }

    def run_facts(self, run_id: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
        """Where a run came from: source, parameters, environment, user, experiment."""
        record = record or self.run_record(run_id)
        execution = record["execution"] or {"properties": {}}
        properties = execution["properties"]
        facts = record["facts"]
        environment = facts.get("environment")
        experiment = self.store.experiments.of_runs([run_id]).get(run_id)
        source = facts.get("source")
        return {
            "run": run_id,
            "kind": properties.get("kind"),
            "name": properties.get("name"),
            "experiment": experiment["name"] if experiment else None,
            "parameters": properties.get("parameters", {}),
            "user": properties.get("user"),
            "backend": properties.get("backend"),
            "image": properties.get("image"),
            "reproduces": properties.get("reproduces"),
            "source": None
            if source is None
            else {
                "path": properties.get("source_path"),
                "digest": source["digest"],
                "snapshot": source["uri"],
                "git": properties.get("git"),
            },
            "pipeline_spec": None
            if facts.get("pipeline_spec") is None
            else {
                "digest": facts["pipeline_spec"]["digest"],
                "snapshot": facts["pipeline_spec"]["uri"],
            },
            "environment": None
            if environment is None
            else {
                "digest": environment["digest"],
                "python": environment["properties"].get("python"),
                "platform": environment["properties"].get("platform"),
            },
        }

    def environment_distributions(self, digest: str) -> list[str]:
        rows = self.store.query(
            "SELECT properties FROM artifacts WHERE type_id=? AND digest=? LIMIT 1",
            (self.type_id(ENVIRONMENT, ARTIFACT), digest),
        )
        return list(_loads(rows[0]["properties"]).get("distributions", [])) if rows else []
