"""REST handlers for notebook pipelines and their runs (all under /kubelab/api/).

| method path                                  | body / query              | answer |
|----------------------------------------------|---------------------------|--------|
| POST pipelines/compile                       | {path, ir?: bool = true, content?: nbformat JSON (unsaved notebook)} | 200 steps, edges, parameters, metrics, cells (+ `ir`); 400 {message, cell, step} |
| POST pipelines/validate                      | {path, parameters?}       | 200 report {ok, errors, steps, variables, metrics}; 429 when too many run |
| POST runs                                    | {path, parameters, backend, experiment?} | 201 {id, backend} |
| GET  runs                                    | ?limit=N&backend=NAME&experiment=ID_OR_NAME&archived=true | 200 {runs: [...], unavailable: {backend: why}} newest first, of every configured backend unless `backend` names one; `experiment` keeps one local experiment's runs |
| GET  runs/{id}                               |                           | 200 run JSON |
| POST runs/{id}/cancel                        |                           | 200 run JSON; 409 when it already finished |
| POST runs/{id}/rerun                         |                           | 201 {id}: the same notebook, same parameters |
| POST runs/{id}/steps/{step}/run-from         |                           | 201 {id}: re-runs step + downstream, upstream from cache |
| GET  runs/{id}/steps/{step}/logs             | ?offset=N (bytes)         | 200 {text, offset, complete, state} |
| GET  runs/{id}/steps/{step}/outputs          |                           | 200 {outputs: [{name, uri, schema_title, servable}]}: `servable` is `{format, type}` for a model a server can load (the sidebar's Serve), else null |

Following a running step's log: call `logs?offset=0`, append `text`, call again with
the returned `offset` until `complete` is true (the step has finished and the whole
file was returned). Each answer carries at most 256 KiB. Handlers only parse, confine paths to the root
and call the server's `kubelab.client.Client`.

The compile answer's `cells` gives every grouped code cell's `{index, role, step}` (the
labels on the notebook's cells). A run's JSON has `number` (per notebook), `label`
(`#8 · re-run of #7`) and `origin`; a cached step has `cached_from` {run, task, number,
duration_s}, a failed notebook step `failed_at` {cell, line}. Cell indices are 0-based;
messages count cells from 1, as JupyterLab does.

`path` is a notebook path relative to the Jupyter root directory (as JupyterLab shows
it). Absolute paths, `..` segments and symlinks leading out of the root are refused.
`{step}` is the pipeline task name (as in the run JSON) or the notebook step name.
Each run names its `experiment` (and `experiment_id`); runs of archived experiments
are listed only with `archived=true`. Lineage, compare, reproduce and experiments
are in `lineage.py`.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from kubelab.pipelines.errors import ForbiddenError, KubelabError, NotFoundError

from .handlers import KubelabHandler, guarded, reads, runs_code


class ForbiddenPathError(ForbiddenError):
    """A path that leads outside the Jupyter root."""


def resolve_path(root: str | os.PathLike[str], path: Any, what: str = "file") -> Path:
    """`path` (relative to the Jupyter root) as an absolute, existing path inside `root`."""
    if not isinstance(path, str) or not path.strip():
        raise KubelabError(f"'path' must be a {what} path relative to the Jupyter root")
    if "\x00" in path:
        raise KubelabError("'path' contains a NUL byte", path=path)
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or os.path.isabs(path) or (len(path) > 1 and path[1] == ":"):
        raise KubelabError(
            f"{path!r} is absolute; give a path relative to the Jupyter root", path=path
        )
    if ".." in pure.parts:
        raise ForbiddenPathError(f"{path!r} leads outside the Jupyter root", path=path)
    base = Path(root).resolve()
    full = (base / pure).resolve()
    if not full.is_relative_to(base):
        raise ForbiddenPathError(f"{path!r} leads outside the Jupyter root", path=path)
    if not full.exists():
        raise NotFoundError(f"{what} {path!r} does not exist", path=path)
    return full


def resolve_notebook(root: str | os.PathLike[str], path: Any) -> Path:
    """`path` (relative to the Jupyter root) as an absolute notebook file inside `root`."""
    full = resolve_path(root, path, "notebook")
    if not full.is_file() or full.suffix != ".ipynb":
        raise KubelabError(f"{path!r} is not a notebook (.ipynb)", path=path)
    return full


def relative_path(root: str | os.PathLike[str], source: str | None) -> str | None:
    """A stored absolute source path as a root-relative path, or None when outside."""
    if not source:
        return None
    try:
        return Path(source).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return None


def _compile(full: Path, *, with_ir: bool, content: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the sidebar shows of a notebook: steps, cells, edges, parameters (+ IR)."""
    from kubelab.pipelines.notebook import codegen, compile_notebook

    if content is None:
        pipeline = compile_notebook(full)
    else:
        import nbformat

        try:
            node = nbformat.from_dict(content)
            if "cells" not in node or not isinstance(node["cells"], list):
                raise ValueError("no 'cells' list")
        except Exception as error:
            raise KubelabError(f"'content' is not a notebook: {error}") from None
        pipeline = compile_notebook(node, name=full.stem)
    body = pipeline.to_json()
    for step, spec in zip(pipeline.steps, body["steps"], strict=True):
        spec["task"] = codegen.task_name(step.function_name)
    body["warnings"] = pipeline.warnings
    if with_ir:
        body["ir"] = pipeline.pipeline_spec()
    return body


class RunsBase(KubelabHandler):
    def notebook(self, path: Any) -> Path:
        return resolve_notebook(self.root_dir, path)

    def with_path(self, run: dict[str, Any]) -> dict[str, Any]:
        run.setdefault("backend", "local")
        run["path"] = relative_path(self.root_dir, run.get("source"))
        return run

    async def find_run(self, run_id: str) -> dict[str, Any]:
        return self.with_path(await self.call(self.client.get_run, run_id))

    async def source_of(self, run_id: str) -> tuple[dict[str, Any], Path]:
        """A run and its notebook, which must still be under this Jupyter root."""
        run = await self.find_run(run_id)
        if run["path"] is None:
            raise KubelabError(
                f"run {run['id']} was not started from a notebook under this Jupyter root",
                run=run["id"],
            )
        return run, self.notebook(run["path"])


class CompileHandler(RunsBase):
    @reads
    async def post(self) -> None:
        body = self.read_json()
        full = self.notebook(body.get("path"))
        content = body.get("content")
        if content is not None and not isinstance(content, dict):
            raise KubelabError("'content' must be a notebook (nbformat JSON object)")
        answer = await self.call(
            _compile, full, with_ir=bool(body.get("ir", True)), content=content
        )
        answer["path"] = body["path"]
        self.write_json(answer)


class ValidateHandler(RunsBase):
    @runs_code
    async def post(self) -> None:
        body = self.read_json()
        full = self.notebook(body.get("path"))
        from kubelab.pipelines.notebook import validate_notebook

        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise KubelabError("'parameters' must be an object of name: value")
        app = self.extensionapp
        report = await app.validate_pool().run(
            validate_notebook, full, parameters=parameters, timeout=app.validate_timeout
        )
        answer = report.to_json()
        answer["notebook"] = body["path"]
        self.write_json(answer)


class RunsHandler(RunsBase):
    @guarded
    async def get(self) -> None:
        limit = self.int_argument("limit", 100)
        backend = self.get_query_argument("backend", None) or None
        runs = await self.call(
            self.client.list_runs,
            limit,
            backend=backend,
            experiment=self.get_query_argument("experiment", None),
            include_archived=self.get_query_argument("archived", "false") == "true",
        )
        self.write_json(
            {"runs": [self.with_path(r) for r in runs], "unavailable": runs.unavailable}
        )

    @runs_code
    async def post(self) -> None:
        body = self.read_json()
        full = self.notebook(body.get("path"))
        started = await self.call(
            self.client.create_run_from_pipeline_package,
            full,
            body.get("parameters"),
            backend=body.get("backend"),
            experiment_name=body.get("experiment"),
        )
        self.write_json({"id": started.run_id, "backend": started.backend}, status=201)


class RunHandler(RunsBase):
    @guarded
    async def get(self, run_id: str) -> None:
        self.write_json(await self.find_run(run_id))


class CancelHandler(RunsBase):
    @guarded
    async def post(self, run_id: str) -> None:
        self.write_json(self.with_path(await self.call(self.client.cancel, run_id)))


class RerunHandler(RunsBase):
    @runs_code
    async def post(self, run_id: str) -> None:
        run, full = await self.source_of(run_id)
        new_id = await self.call(self.client.rerun, run["id"], source=str(full))
        self.write_json(
            {"id": new_id, "backend": run["backend"], "rerun_of": run["id"]}, status=201
        )


class RunFromHandler(RunsBase):
    @runs_code
    async def post(self, run_id: str, step: str) -> None:
        run, full = await self.source_of(run_id)
        new_id = await self.call(self.client.run_from, run["id"], step, source=str(full))
        self.write_json(
            {"id": new_id, "backend": run["backend"], "from_run": run["id"], "from_step": step},
            status=201,
        )


class LogsHandler(RunsBase):
    @guarded
    async def get(self, run_id: str, step: str) -> None:
        offset = self.int_argument("offset", 0)
        self.write_json(await self.call(self.client.logs, run_id, step, offset))


class OutputsHandler(RunsBase):
    """A step's outputs, and which of them are models (what the Serve button offers)."""

    @guarded
    async def get(self, run_id: str, step: str) -> None:
        run = await self.find_run(run_id)
        found = next((s for s in run["steps"] if step in (s["name"], s.get("display_name"))), None)
        if found is None:
            raise NotFoundError(f"run {run['id']} has no step {step!r}", run=run["id"], step=step)
        self.write_json({"outputs": await self.call(_outputs, found, run["backend"])})


def _outputs(step: dict[str, Any], backend: str) -> list[dict[str, Any]]:
    from kubelab.workloads.serving.modelfiles import servable_output

    outputs = []
    for name, artifact in sorted((step.get("outputs") or {}).items()):
        if not isinstance(artifact, dict) or not isinstance(artifact.get("uri"), str):
            continue
        title = (artifact.get("type") or {}).get("schemaTitle")
        # Only this machine's files can be looked at (a cluster run's are in its store).
        local = backend == "local" and Path(artifact["uri"]).is_absolute()
        outputs.append(
            {
                "name": name,
                "uri": artifact["uri"],
                "schema_title": title,
                "servable": servable_output(artifact["uri"], title) if local else None,
            }
        )
    return outputs


def run_handlers(prefix: str) -> list[tuple[str, type]]:
    run = rf"{prefix}/runs/(?P<run_id>[^/]+)"
    return [
        (rf"{prefix}/pipelines/compile", CompileHandler),
        (rf"{prefix}/pipelines/validate", ValidateHandler),
        (rf"{prefix}/runs", RunsHandler),
        (rf"{run}", RunHandler),
        (rf"{run}/cancel", CancelHandler),
        (rf"{run}/rerun", RerunHandler),
        (rf"{run}/steps/(?P<step>[^/]+)/run-from", RunFromHandler),
        (rf"{run}/steps/(?P<step>[^/]+)/logs", LogsHandler),
        (rf"{run}/steps/(?P<step>[^/]+)/outputs", OutputsHandler),
    ]
