"""REST handlers for lineage, comparison, reproduction and experiments (under /kubelab/api/).

| method path                     | query / body | answer |
|---------------------------------|--------------|--------|
| GET  runs/compare               | ?runs=A&runs=B (or runs=A,B; 2..10; a job step as JOB/STEP) | 200 comparison |
| GET  runs/{id}/lineage          |              | 200 run lineage |
| POST runs/{id}/reproduce        |              | 201 {id, reproduces}: a re-run of the stored snapshot, no cache |
| GET  runs/{id}/reproduction     |              | 200 reproduction report of a run started by `reproduce` |
| GET  artifacts                  | ?uri=U or ?digest=D or ?path=P (relative to the root) | 200 {artifacts: [...]} |
| GET  lineage                    | ?artifact=ID or ?ref=RUN/STEP/OUTPUT|DIGEST or ?uri= / ?digest= / ?path= | 200 lineage graph |
| GET  experiments                | ?archived=true | 200 {experiments: [...]} |
| POST experiments                | {name, description?} | 201 experiment |
| GET  experiments/{id}           | ?limit=N     | 200 experiment + `recent_runs` (run JSON, newest first) |
| PATCH experiments/{id}          | {name?, description?, archived?} | 200 experiment (rename, archive, unarchive) |

The JSON (documented for the compare, lineage and experiment views):

* experiment: `{id, name, description, archived, created_at, last_run_at, runs, states: {state: count}}`.
* comparison (`kubelab.client.compare`): `runs: [{ref, id, step, name, kind, state,
  created_at, finished_at, experiment, user, backend, image, reproduces, source: {path,
  digest, git: {commit, dirty, repository}}, environment: {digest, python, platform}}]`;
  every other list is aligned with `runs` and its rows carry `changed`:
  `parameters` and `metrics`: `[{name, values, missing, changed}]`; `series`:
  `[{task, metric, runs: [[{step, value, ts}], ...]}]`; `steps`: `[{name,
  display_name, step, cells, states, cached, durations, code_digests, code_changed,
  diffs (unified diff against the first run, or null), images, image_changed,
  parameters_changed, inputs_changed}]`; `inputs` and `outputs`: `[{step, name, type,
  external, digests, uris, changed}]` (`external`: data from outside the run —
  imported, read from a file, or a pipeline input); `output_parameters`: `[{step,
  name, values, changed}]`; `environment`: `{digests, python, changed, differences:
  [null | {added, removed, changed}]}`; `source_changed`.
* lineage graph (`Lineage.lineage`): `artifact` (the one asked about), `artifacts`
  `[{id, type, name, uri, digest, properties, producer (execution id), reused_by}]`,
  `executions` `[{id, type, name, state, run, properties: {task, step, cells, inputs
  (parameters), outputs, cached, code_digest, image, ...}}]`, `edges` `[{artifact,
  execution, type: INPUT|OUTPUT, name}]`, `consumers` `[{execution, run, name,
  step}]`, `runs` `{run_id: run facts}`.
* run facts / run lineage: `{run, kind, name, experiment, parameters, user, backend,
  image, reproduces, source: {path, digest, snapshot, git}, pipeline_spec: {digest,
  snapshot}, environment: {digest, python, platform}}`; run lineage adds `steps`:
  `[{name, execution, inputs: [artifact + event, index], outputs: [...]}]`.
* reproduction: `{run, reproduction, state, equal, artifacts: [{step, name, type,
  original, reproduced, equal}], output_parameters: [...], environment: {equal,
  original, reproduced, differences}, warnings}`.

Source paths under the Jupyter root are also given root-relative as `path`.

Authorization (see `handlers`): reading needs `read` on kubelab; `reproduce` runs the
notebook's code again, so it needs what starting a run needs (`write` on kubelab,
`execute` on kernels); creating, renaming and archiving experiments need `write`. A
`?path=` reads one of the user's files (its content digest is the lookup key): it
must lie under the Jupyter root and needs `read` on contents too, as Jupyter's own
contents API would. `?ref=` is never taken as a file path here.
"""

from __future__ import annotations

from typing import Any

from jupyter_core.utils import ensure_async
from tornado import web

from kubelab.pipelines.errors import KubelabError, NotFoundError

from .handlers import KubelabHandler, guarded, runs_code
from .runs import relative_path, resolve_path


class LineageBase(KubelabHandler):
    def relative(self, facts: dict[str, Any]) -> dict[str, Any]:
        source = facts.get("source")
        if source:
            source["relative_path"] = relative_path(self.root_dir, source.get("path"))
        return facts

    async def file(self, path: str) -> str:
        """A `?path=` of the user's, confined to the root; reading it needs `read` on
        contents (checked when asked for, as the other lookups do not read files)."""
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", "contents")
        )
        if not allowed:
            raise web.HTTPError(
                403, log_message="User is not authorized to read on resource: contents."
            )
        return str(resolve_path(self.root_dir, path))

    async def lookup(self) -> dict[str, Any]:
        """The artifact lookup keys of a query: exactly one of uri, digest, path."""
        keys = {k: self.get_query_argument(k, None) for k in ("uri", "digest", "path")}
        given = {k: v for k, v in keys.items() if v}
        if len(given) != 1:
            raise KubelabError("give one of 'uri', 'digest' or 'path'")
        if "path" in given:
            given["path"] = await self.file(given["path"])
        return given


class CompareHandler(LineageBase):
    @guarded
    async def get(self) -> None:
        refs = [r for value in self.get_query_arguments("runs") for r in value.split(",") if r]
        comparison = await self.call(self.client.compare_runs, refs)
        for run in comparison["runs"]:
            run["source"]["relative_path"] = relative_path(self.root_dir, run["source"]["path"])
        self.write_json(comparison)


class RunLineageHandler(LineageBase):
    @guarded
    async def get(self, run_id: str) -> None:
        self.write_json(self.relative(await self.call(self.client.run_lineage, run_id)))


class ReproduceHandler(LineageBase):
    @runs_code
    async def post(self, run_id: str) -> None:
        original = await self.call(self.client.get_run, run_id)
        new_id = await self.call(self.client.start_reproduction, original["id"])
        self.write_json({"id": new_id, "reproduces": original["id"]}, status=201)


class ReproductionHandler(LineageBase):
    @guarded
    async def get(self, run_id: str) -> None:
        from kubelab.client.compare import reproduction

        facts = await self.call(self.client.run_lineage, run_id)
        if not facts.get("reproduces"):
            raise KubelabError(
                f"run {facts['run']} is not a reproduction (start one with POST "
                "runs/{id}/reproduce)",
                run=facts["run"],
            )
        report = await self.call(reproduction, self.client.store, facts["reproduces"], facts["run"])
        self.write_json(report)


class ArtifactsHandler(LineageBase):
    @guarded
    async def get(self) -> None:
        lookup = await self.lookup()
        found = await self.call(lambda: self.client.find_artifacts(**lookup))
        self.write_json({"artifacts": found})


class ArtifactLineageHandler(LineageBase):
    @guarded
    async def get(self) -> None:
        artifact = self.get_query_argument("artifact", None)
        ref = self.get_query_argument("ref", None)
        if artifact is not None:
            try:
                target: Any = int(artifact)
            except ValueError:
                raise KubelabError("'artifact' must be an artifact id") from None
        elif ref is not None:
            target = ref
        else:
            lookup = await self.lookup()
            found = await self.call(lambda: self.client.find_artifacts(**lookup))
            if not found:
                raise NotFoundError("no recorded artifact matches", **lookup)
            target = found[0]
        graph = await self.call(self.client.artifact_lineage, target, files=False)
        for facts in graph["runs"].values():
            self.relative(facts)
        self.write_json(graph)


class ExperimentsHandler(LineageBase):
    @guarded
    async def get(self) -> None:
        archived = self.get_query_argument("archived", "false") == "true"
        found = await self.call(self.client.list_experiments, include_archived=archived)
        self.write_json({"experiments": found})

    @guarded
    async def post(self) -> None:
        body = self.read_json()
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise KubelabError("'description' must be a string", field="description")
        created = await self.call(self.client.create_experiment, body.get("name"), description)
        self.write_json(created, status=201)


class ExperimentHandler(LineageBase):
    @guarded
    async def get(self, experiment_id: str) -> None:
        experiment = await self.call(self.client.get_experiment, int(experiment_id))
        runs = await self.call(
            self.client.store.list_runs,
            self.int_argument("limit", 100),
            ("pipeline", "training", "tuning", "serving"),
            experiment=experiment["id"],
        )
        for run in runs:
            run["path"] = relative_path(self.root_dir, run.get("source"))
        self.write_json({**experiment, "recent_runs": runs})

    @guarded
    async def patch(self, experiment_id: str) -> None:
        body = self.read_json()
        unknown = sorted(set(body) - {"name", "description", "archived"})
        if unknown:
            raise KubelabError(
                f"unknown field(s) {', '.join(unknown)}; fields: name, description, archived",
                field=unknown[0],
            )
        ref = int(experiment_id)
        result = await self.call(self.client.get_experiment, ref)
        if "name" in body:
            result = await self.call(self.client.rename_experiment, ref, body["name"])
        if "archived" in body:
            if not isinstance(body["archived"], bool):
                raise KubelabError("'archived' must be true or false", field="archived")
            change = self.client.archive_experiment if body["archived"] else None
            result = await self.call(change or self.client.unarchive_experiment, ref)
        if "description" in body:
            if not isinstance(body["description"], str):
                raise KubelabError("'description' must be a string", field="description")
            result = await self.call(
                self.client.store.experiments.update, ref, description=body["description"]
            )
        self.write_json(result)


def lineage_handlers(prefix: str) -> list[tuple[str, type]]:
    run = rf"{prefix}/runs/(?P<run_id>[^/]+)"
    return [
        (rf"{prefix}/runs/compare", CompareHandler),
        (rf"{run}/lineage", RunLineageHandler),
        (rf"{run}/reproduce", ReproduceHandler),
        (rf"{run}/reproduction", ReproductionHandler),
        (rf"{prefix}/artifacts", ArtifactsHandler),
        (rf"{prefix}/lineage", ArtifactLineageHandler),
        (rf"{prefix}/experiments", ExperimentsHandler),
        (rf"{prefix}/experiments/(?P<experiment_id>[0-9]+)", ExperimentHandler),
    ]
