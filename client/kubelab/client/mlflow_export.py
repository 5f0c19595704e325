"""Runs written to an MLflow tracking store, as an MLflow user expects to find them.

Each kubelab run or job becomes an MLflow run in the MLflow experiment of the same
name: its parameters; its metrics (final values, and the series of training jobs and
tuning trials with their steps and timestamps); MLflow's own tags (`mlflow.runName`,
`mlflow.user`, `mlflow.source.name`, `mlflow.source.git.commit`) and kubelab's lineage
as `kubelab.*` tags (run id, source and environment digests, each step's code digest
and cached flag, each output artifact's digest and URI, each input's digest); and as
artifacts the output files (`<step>/<output>/`), the source snapshot (`source/`), each
step's code (`code/`) and the environment's distribution list.

A run exported before (same `kubelab.run_id` tag in that experiment) is skipped.
MLflow is an optional dependency (`pip install kubelab[mlflow]`, the `mlflow-skinny`
client). MLflow keeps its file store in maintenance mode behind
`MLFLOW_ALLOW_FILE_STORE`; exporting to a folder or `file://` URI is asking for one,
so the export allows it for its own calls.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.errors import KubelabError

if TYPE_CHECKING:
    from kubelab.client.store import RunStore

STATUS = {
    "succeeded": "FINISHED",
    "failed": "FAILED",
    "cancelled": "KILLED",
    "skipped": "KILLED",
}
MAX_PARAM = 6000  # MLflow's limits on a parameter and a tag value
MAX_TAG = 8000
BATCH = 900  # log_batch takes up to 1000 metrics at a time


def tracking_uri_of(target: str) -> str:
    """A plain folder becomes a `file://` URI; anything with a scheme is kept."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", target):
        return target
    return Path(target).expanduser().resolve().as_uri()


@contextlib.contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    if not uri.startswith("file:") or "MLFLOW_ALLOW_FILE_STORE" in os.environ:
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


def _key(text: str) -> str:
    """MLflow keys allow letters, digits, `_-. /`."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", text)


def _value(value: Any, limit: int) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def export_runs(
    store: RunStore, target: str, run_ids: list[str], *, artifacts: bool = True
) -> list[dict[str, Any]]:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise KubelabError(
            "exporting to MLflow needs the mlflow client: pip install 'kubelab[mlflow]'"
        ) from None
    uri = tracking_uri_of(target)
    with _file_store_allowed(uri):
        client = MlflowClient(uri)
        return [_export(store, client, run_id, artifacts=artifacts) for run_id in run_ids]


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return str(found.experiment_id)
    return str(client.create_experiment(name))


def _metrics(run: dict[str, Any], series: dict[str, dict[str, list[dict[str, Any]]]]) -> list[Any]:
    from mlflow.entities import Metric

    finished = int((_epoch(run["finished_at"]) or _epoch(run["created_at"]) or 0) * 1000)
    reporters: dict[str, list[str]] = {}
    for task, metrics in series.items():
        for name in metrics:
            reporters.setdefault(name, []).append(task)
    found = []
    for task, metrics in series.items():
        for name, points in metrics.items():
            key = name if len(reporters[name]) == 1 else f"{task}/{name}"
            for index, point in enumerate(points):
                step = point["step"] if point["step"] is not None else index
                found.append(Metric(_key(key), point["value"], int(point["ts"] * 1000), step))
    for name, value in (run.get("metrics") or {}).items():
        if name in reporters and len(reporters[name]) == 1:
            continue  # the series' last point is this value
        if isinstance(value, int | float) and not isinstance(value, bool):
            found.append(Metric(_key(name), float(value), finished, 0))
    return found


def _epoch(iso: str | None) -> float | None:
    from datetime import datetime

    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _tags(run: dict[str, Any], facts: dict[str, Any], record: dict[str, Any]) -> dict[str, str]:
    source = facts.get("source") or {}
    git = source.get("git") or {}
    path = source.get("path") or run.get("source") or ""
    tags = {
        "mlflow.runName": run["name"],
        "mlflow.user": str(facts.get("user") or ""),
        "mlflow.source.name": path,
        "mlflow.source.type": "JOB"
        if run["kind"] != "pipeline"
        else ("NOTEBOOK" if path.endswith(".ipynb") else "LOCAL"),
        "kubelab.run_id": run["id"],
        "kubelab.kind": run["kind"],
        "kubelab.backend": run["backend"],
        "kubelab.state": run["state"],
        "kubelab.experiment": str(run.get("experiment") or ""),
    }
    if git:
        tags["mlflow.source.git.commit"] = git["commit"]
        tags["kubelab.source.git.dirty"] = str(bool(git.get("dirty"))).lower()
    if source.get("digest"):
        tags["kubelab.source.digest"] = source["digest"]
    env = facts.get("environment") or {}
    if env:
        tags["kubelab.environment.digest"] = env["digest"]
        tags["kubelab.python"] = str(env.get("python"))
    if facts.get("pipeline_spec"):
        tags["kubelab.pipeline_spec.digest"] = facts["pipeline_spec"]["digest"]
    for key in ("image", "reproduces"):
        if facts.get(key):
            tags[f"kubelab.{key}"] = str(facts[key])
    if run.get("error"):
        tags["kubelab.error"] = run["error"]
    for task, step in record["steps"].items():
        props = step["execution"]["properties"]
        prefix = f"kubelab.step.{_key(task)}"
        if props.get("code_digest"):
            tags[f"{prefix}.code_digest"] = props["code_digest"]
        tags[f"{prefix}.cached"] = str(bool(props.get("cached"))).lower()
        for art in step["outputs"]:
            tags[f"kubelab.output.{_key(task)}.{_key(art['event'])}"] = (
                f"{art['digest']} {art['uri']}".strip()
            )
        for art in step["inputs"]:
            tags[f"kubelab.input.{_key(task)}.{_key(art['event'])}"] = art["digest"] or art["uri"]
    return {_key(k): _value(v, MAX_TAG) for k, v in tags.items()}


def _export(store: RunStore, client: Any, run_id: str, *, artifacts: bool) -> dict[str, Any]:
    from mlflow.entities import Param, RunTag

    run = store.get_run(run_id)
    record = store.lineage.run_record(run["id"])
    facts = store.lineage.run_facts(run["id"], record)
    experiment_id = _experiment_id(client, run.get("experiment") or "Default")
    existing = client.search_runs(
        [experiment_id], filter_string=f"tags.`kubelab.run_id` = '{run['id']}'", max_results=1
    )
    if existing:
        return {
            "run": run["id"],
            "mlflow_run_id": existing[0].info.run_id,
            "experiment_id": experiment_id,
            "status": "exists",
        }
    started = int((_epoch(run["created_at"]) or 0) * 1000)
    mlflow_run = client.create_run(experiment_id, start_time=started, run_name=run["name"])
    target = mlflow_run.info.run_id
    parameters = run.get("parameters") or facts.get("parameters") or {}
    params = [Param(_key(k), _value(v, MAX_PARAM)) for k, v in parameters.items()]
    tags = [RunTag(k, v) for k, v in _tags(run, facts, record).items()]
    for start in range(0, max(len(params), len(tags)), 90):
        client.log_batch(target, params=params[start : start + 90], tags=tags[start : start + 90])
    metrics = _metrics(run, store.metric_series(run["id"]))
    for start in range(0, len(metrics), BATCH):
        client.log_batch(target, metrics=metrics[start : start + BATCH])
    if artifacts:
        _artifacts(store, client, target, record, facts)
    status = STATUS.get(run["state"])
    if status:
        ended = _epoch(run["finished_at"])
        client.set_terminated(target, status, end_time=int(ended * 1000) if ended else None)
    return {
        "run": run["id"],
        "mlflow_run_id": target,
        "experiment_id": experiment_id,
        "status": "exported",
    }


def _artifacts(
    store: RunStore, client: Any, target: str, record: dict[str, Any], facts: dict[str, Any]
) -> None:
    source = facts.get("source")
    if source and Path(source["snapshot"]).is_file():
        name = Path(source.get("path") or source["snapshot"]).name
        client.log_text(
            target, Path(source["snapshot"]).read_text(errors="replace"), f"source/{name}"
        )
    env = facts.get("environment")
    if env:
        listing = store.lineage.environment_distributions(env["digest"])
        client.log_text(target, "\n".join(listing) + "\n", "environment.txt")
    for task, step in record["steps"].items():
        folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", task)
        code = step["execution"]["properties"].get("code")
        if code and Path(code).is_file():
            client.log_text(target, Path(code).read_text(errors="replace"), f"code/{folder}.py")
        for art in step["outputs"]:
            path = Path(art["uri"]) if art["uri"] and "://" not in art["uri"] else None
            where = f"{folder}/{re.sub(r'[^A-Za-z0-9_.-]+', '_', art['event'])}"
            if path is None or not path.exists():
                continue
            if path.is_dir():
                client.log_artifacts(target, str(path), where)
            else:
                client.log_artifact(target, str(path), where)
