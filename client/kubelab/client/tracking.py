"""What the run store's lineage answers, as `Client` methods: experiments (KFP's
names), `compare_runs`, `run_lineage`, `artifact_lineage`, `find_artifacts`,
`reproduce_run` and `export_to_mlflow`. A mixin, so that the client stays one object
(as `kfp.Client`) while runs and jobs (client.py) and tracking live apart."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.client.store import JOB_KINDS
from kubelab.pipelines.errors import KubelabError, NotFoundError

if TYPE_CHECKING:
    from kubelab.client.store import RunStore


class TrackingMixin:
    """Mixed into `Client`: uses its `store`, `local()` and `wait_for_run_completion`."""

    store: RunStore
    # -- experiments (KFP's names) --------------------------------------------------------

    def create_experiment(self, name: str, description: str = "") -> dict[str, Any]:
        """An experiment to put runs in (`experiment_name=`); an existing one is returned."""
        return self.store.experiments.create(name, description)

    def get_experiment(
        self, experiment_id: int | None = None, experiment_name: str | None = None
    ) -> dict[str, Any]:
        """`{id, name, description, archived, created_at, last_run_at, runs, states}`."""
        ref = experiment_id if experiment_id is not None else experiment_name
        if ref is None:
            raise KubelabError("name the experiment by id or name")
        return self.store.experiments.get(ref)

    def list_experiments(self, *, include_archived: bool = False) -> list[dict[str, Any]]:
        """Experiments, the most recently used first (archived ones on request)."""
        return self.store.experiments.list_all(include_archived=include_archived)

    def rename_experiment(self, experiment: int | str, new_name: str) -> dict[str, Any]:
        """Its runs stay in it; `ConflictError` when the new name is taken."""
        return self.store.experiments.rename(experiment, new_name)

    def archive_experiment(self, experiment: int | str) -> dict[str, Any]:
        """Hide the experiment and its runs from the lists (nothing is deleted)."""
        return self.store.experiments.update(experiment, archived=True)

    def unarchive_experiment(self, experiment: int | str) -> dict[str, Any]:
        return self.store.experiments.update(experiment, archived=False)

    # -- lineage ----------------------------------------------------------------------------

    def compare_runs(self, run_ids: list[str]) -> dict[str, Any]:
        """Parameters, metrics, series, steps' code, input and output digests of 2..10
        runs, jobs or job steps (`JOB/STEP`, e.g. a tuning trial) side by side, each
        row marked `changed` (see `kubelab.client.compare`)."""
        from kubelab.client.compare import compare

        return compare(self.store, list(run_ids))

    def run_lineage(self, run_id: str) -> dict[str, Any]:
        """Where a run came from (source snapshot, git, parameters, environment, user)
        and each step's execution with the artifacts it read and wrote."""
        run_id = self.store.resolve_run_id(run_id)
        record = self.store.lineage.run_record(run_id)
        return {
            **self.store.lineage.run_facts(run_id, record),
            "steps": [
                {
                    "name": task,
                    "execution": step["execution"],
                    "inputs": step["inputs"],
                    "outputs": step["outputs"],
                }
                for task, step in record["steps"].items()
            ],
        }

    def find_artifacts(
        self,
        *,
        artifact_id: int | None = None,
        uri: str | os.PathLike[str] | None = None,
        digest: str | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded artifacts by id, URI or digest; or by a file's `path` (its URI, else
        its content digest: a copy of a model is still found; a notebook or pipeline
        file is found among the source snapshots by its sha256). Newest first."""
        lineage = self.store.lineage
        if path is not None:
            full = Path(path).resolve()
            found = lineage.find_artifacts(uri=str(full))
            if not found and full.exists():
                from kubelab.pipelines.local.cache import content_digest
                from kubelab.pipelines.local.recording import normal_digest

                found = lineage.find_artifacts(digest=normal_digest(content_digest(full)))
            if not found and full.is_file():
                from kubelab.client.provenance import sha256_digest

                found = lineage.find_artifacts(digest=sha256_digest(full.read_bytes()))
            return found
        return lineage.find_artifacts(
            artifact_id=artifact_id, uri=None if uri is None else str(uri), digest=digest
        )

    def artifact_lineage(
        self, artifact: int | dict[str, Any] | str | os.PathLike[str], *, files: bool = True
    ) -> dict[str, Any]:
        """Where an artifact came from: its producing step and run, that step's inputs
        and their producers, back to each run's source snapshot, parameters and
        environment; and who consumed it. `artifact`: an id, a found artifact, a
        `RUN/STEP/OUTPUT` reference, a file path or a digest. `files=False` never
        reads a file for it (the server confines paths to the Jupyter root itself)."""
        if isinstance(artifact, dict):
            return self.store.lineage.lineage(int(artifact["id"]))
        if isinstance(artifact, int):
            return self.store.lineage.lineage(artifact)
        return self.store.lineage.lineage(self._artifact_id(str(artifact), files=files))

    def _artifact_id(self, ref: str, *, files: bool = True) -> int:
        if ref.isdigit():
            return int(ref)
        parts = ref.split("/")
        is_file = files and Path(ref).exists()
        run_id = None
        if len(parts) >= 3 and not is_file:
            with contextlib.suppress(NotFoundError):
                run_id = self.store.resolve_run_id(parts[0])
        if run_id is not None:
            step, output = "/".join(parts[1:-1]), parts[-1]
            for name, found in self.store.lineage.run_record(run_id)["steps"].items():
                if step not in (name, found["execution"]["properties"].get("step")):
                    continue
                for art in found["outputs"]:
                    if art["event"] == output:
                        return int(art["id"])
            raise NotFoundError(
                f"run {run_id} has no output {output!r} of step {step!r}",
                run=run_id,
                step=step,
            )
        found = self.find_artifacts(path=ref) if is_file else []
        if not found:
            found = self.store.lineage.find_artifacts(digest=ref)
        if not found:
            raise NotFoundError(
                f"no recorded artifact {ref!r}: give an artifact id, RUN/STEP/OUTPUT, "
                + ("a file path or a digest" if files else "or a digest"),
                artifact=ref,
            )
        return int(found[0]["id"])

    def reproduce_run(
        self, run_id: str, *, timeout: float | None = None, **engine_options: Any
    ) -> dict[str, Any]:
        """Run `run_id`'s stored pipeline snapshot again with its stored parameters and
        no cache, wait, and report artifact by artifact whether the outputs' digests
        match (and whether the environment differs). See `compare.reproduction`."""
        from kubelab.client.compare import reproduction

        new_id = self.start_reproduction(run_id, **engine_options)
        self.wait_for_run_completion(new_id, timeout)
        return reproduction(self.store, self.store.resolve_run_id(run_id), new_id)

    def start_reproduction(self, run_id: str, **engine_options: Any) -> str:
        """Start the re-run `reproduce_run` waits for; returns its id."""
        import json

        run = self.store.get_run(run_id)
        if run["kind"] != "pipeline" or run["backend"] != "local":
            raise KubelabError(
                f"{run['id']} is a {run['backend']} {run['kind']} record: reproduce re-runs "
                "local pipeline runs",
                run=run["id"],
            )
        facts = self.store.lineage.run_facts(run["id"])
        spec = facts.get("pipeline_spec")
        try:
            ir = json.loads(Path(spec["snapshot"]).read_text()) if spec else None
        except (OSError, ValueError):
            ir = None
        if ir is None:
            raise KubelabError(
                f"run {run['id']} has no stored pipeline snapshot (it was recorded before "
                "kubelab kept them); use `kubelab runs rerun` instead",
                run=run["id"],
            )
        metadata = {
            step["name"]: self.store.task_info(run["id"], step["name"]).get("metadata") or {}
            for step in run["steps"]
        }
        source = (facts.get("source") or {}).get("path") or run.get("source")
        return self.local().start_run(
            ir,
            run["parameters"],
            source=source,
            task_metadata={k: v for k, v in metadata.items() if v},
            run_name=run["name"],
            enable_caching=False,
            experiment=run.get("experiment"),
            reproduces=run["id"],
            **engine_options,
        )

    def export_to_mlflow(
        self, tracking_uri: str, run_ids: list[str] | None = None, *, artifacts: bool = True
    ) -> list[dict[str, Any]]:
        """Write runs (default: every local run and job) to an MLflow tracking store:
        parameters, metrics with their steps, lineage as tags, artifacts. Needs the
        `kubelab[mlflow]` extra. Returns `{run, mlflow_run_id, experiment_id, status}`
        per run; a run exported before is skipped (status "exists")."""
        from kubelab.client.mlflow_export import export_runs

        if run_ids:
            ids = [self.store.resolve_run_id(r) for r in run_ids]
        else:
            ids = [r["id"] for r in self.store.list_runs(1000, kinds=("pipeline", *JOB_KINDS))]
        return export_runs(self.store, tracking_uri, ids, artifacts=artifacts)
