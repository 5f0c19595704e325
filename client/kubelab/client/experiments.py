"""Experiments: named groups of runs, as in Kubeflow Pipelines.

An experiment is a `kubelab.Experiment` context in the lineage tables (`lineage.py`),
each run's context its child: listed with run counts by state, renamed, described and
archived. The runs of an archived experiment leave `runs list`, and no new run joins
it, as in KFP.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kubelab.client.lineage import CONTEXT, EXPERIMENT
from kubelab.pipelines.errors import ConflictError, KubelabError, NotFoundError

if TYPE_CHECKING:
    from kubelab.client.lineage import Lineage


def _properties(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


class Experiments:
    """The experiments of one `RunStore` (its connection and lock, through `lineage`)."""

    def __init__(self, lineage: Lineage) -> None:
        self.lineage = lineage
        self.store = lineage.store

    def _type_id(self) -> int:
        return self.lineage.type_id(EXPERIMENT, CONTEXT)

    def _row(self, ref: int | str) -> sqlite3.Row:
        experiment_type = self._type_id()
        rows: list[sqlite3.Row] = []
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            rows = self.store.query(
                "SELECT * FROM contexts WHERE type_id=? AND id=?", (experiment_type, int(ref))
            )
        if not rows:
            rows = self.store.query(
                "SELECT * FROM contexts WHERE type_id=? AND name=?", (experiment_type, str(ref))
            )
        if not rows:
            raise NotFoundError(f"no experiment {ref!r}", experiment=str(ref))
        return rows[0]

    def to_json(self, row: sqlite3.Row) -> dict[str, Any]:
        properties = _properties(row["properties"])
        counts = self.store.query(
            "SELECT r.state AS state, COUNT(*) AS n, MAX(r.created_at) AS last "
            "FROM parent_contexts p JOIN contexts c ON c.id=p.child_id "
            "JOIN runs r ON r.id=c.name WHERE p.parent_id=? GROUP BY r.state",
            (row["id"],),
        )
        return self._summary(row, properties, counts)

    @staticmethod
    def _summary(
        row: sqlite3.Row, properties: dict[str, Any], counts: Iterable[sqlite3.Row]
    ) -> dict[str, Any]:
        from kubelab.client.store import iso_time

        states = {c["state"]: c["n"] for c in counts}
        last = max((c["last"] for c in counts if c["last"] is not None), default=None)
        return {
            "id": row["id"],
            "name": row["name"],
            "description": properties.get("description", ""),
            "archived": bool(properties.get("archived")),
            "created_at": iso_time(row["created_at"]),
            "last_run_at": iso_time(last),
            "runs": sum(states.values()),
            "states": states,
        }

    def get(self, ref: int | str) -> dict[str, Any]:
        return self.to_json(self._row(ref))

    def refuse_archived(self, name: str) -> None:
        """New runs do not go into an archived experiment (as in KFP)."""
        rows = self.store.query(
            "SELECT properties FROM contexts WHERE type_id=? AND name=?",
            (self._type_id(), name),
        )
        if rows and _properties(rows[0]["properties"]).get("archived"):
            raise ConflictError(
                f"experiment {name!r} is archived: unarchive it (kubelab experiments "
                "unarchive) or run into another experiment",
                experiment=name,
            )

    def create(self, name: str, description: str = "") -> dict[str, Any]:
        name = check_experiment_name(name)
        with self.store.transaction() as cur:
            self.lineage.context(
                cur, EXPERIMENT, name, {"archived": False, "description": description}
            )
        return self.get(name)

    def list_all(self, *, include_archived: bool = False) -> list[dict[str, Any]]:
        """Experiments with their run counts by state, the most recently used first."""
        experiment_type = self._type_id()
        rows = self.store.query("SELECT * FROM contexts WHERE type_id=?", (experiment_type,))
        counts: dict[int, list[sqlite3.Row]] = {}
        for c in self.store.query(
            "SELECT p.parent_id AS parent, r.state AS state, COUNT(*) AS n, "
            "MAX(r.created_at) AS last FROM parent_contexts p "
            "JOIN contexts c ON c.id=p.child_id JOIN runs r ON r.id=c.name "
            "JOIN contexts e ON e.id=p.parent_id WHERE e.type_id=? GROUP BY p.parent_id, r.state",
            (experiment_type,),
        ):
            counts.setdefault(c["parent"], []).append(c)
        found = []
        for row in rows:
            properties = _properties(row["properties"])
            if properties.get("archived") and not include_archived:
                continue
            found.append(self._summary(row, properties, counts.get(row["id"], [])))
        found.sort(key=lambda e: e["last_run_at"] or e["created_at"] or "", reverse=True)
        return found

    def rename(self, ref: int | str, new_name: str) -> dict[str, Any]:
        row = self._row(ref)
        new_name = check_experiment_name(new_name)
        if new_name == row["name"]:
            return self.to_json(row)
        experiment_type = self._type_id()
        with self.store.transaction() as cur:
            if cur.execute(
                "SELECT 1 FROM contexts WHERE type_id=? AND name=?", (experiment_type, new_name)
            ).fetchone():
                raise ConflictError(
                    f"an experiment named {new_name!r} already exists", experiment=new_name
                )
            cur.execute("UPDATE contexts SET name=? WHERE id=?", (new_name, row["id"]))
        return self.get(row["id"])

    def update(self, ref: int | str, **changes: Any) -> dict[str, Any]:
        """Set properties of an experiment (`archived`, `description`)."""
        row = self._row(ref)
        properties = {**_properties(row["properties"]), **changes}
        with self.store.transaction() as cur:
            cur.execute(
                "UPDATE contexts SET properties=? WHERE id=?", (json.dumps(properties), row["id"])
            )
        return self.get(row["id"])

    def of_runs(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """`{run_id: {id, name}}` of the runs' experiments, in one query."""
        if not run_ids:
            return {}
        rows = self.store.query(
            "SELECT c.name AS run, e.id AS id, e.name AS name FROM contexts c "
            "JOIN parent_contexts p ON p.child_id=c.id JOIN contexts e ON e.id=p.parent_id "
            f"WHERE c.name IN ({','.join('?' * len(run_ids))}) AND e.type_id=?",
            (*run_ids, self._type_id()),
        )
        return {r["run"]: {"id": r["id"], "name": r["name"]} for r in rows}

    def runs_filter(
        self, experiment: int | str | None = None, *, include_archived: bool = False
    ) -> tuple[str, tuple[Any, ...]]:
        """A SQL condition on `runs.id`: the runs of one experiment, and (unless
        `include_archived`) not those of archived experiments."""
        clauses: list[str] = []
        params: list[Any] = []
        member = (
            "SELECT c.name FROM contexts c JOIN parent_contexts p ON p.child_id=c.id "
            "JOIN contexts e ON e.id=p.parent_id WHERE e.type_id=?"
        )
        experiment_type = self._type_id()
        if experiment is not None:
            row = self._row(experiment)
            clauses.append(f"id IN ({member} AND e.id=?)")
            params += [experiment_type, row["id"]]
            include_archived = True  # asked for by name: show its runs even when archived
        if not include_archived:
            clauses.append(f"id NOT IN ({member} AND json_extract(e.properties, '$.archived'))")
            params.append(experiment_type)
        return " AND ".join(clauses), tuple(params)


def check_experiment_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise KubelabError("an experiment name must be a non-empty string", field="name")
    if len(name) > 256 or any(ord(ch) < 32 for ch in name):
        raise KubelabError(
            "an experiment name must be at most 256 printable characters", field="name"
        )
    return name.strip()
