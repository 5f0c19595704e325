"""REST handlers for notebook pipelines and their runs (all under /kubelab/api/).

| method path                                  | body / query              | answer |
|----------------------------------------------|---------------------------|--------|
| POST pipelines/compile                       | {path, ir?: bool = true, content?: nbformat JSON (unsaved notebook)} | 200 steps, edges, parameters, metrics (+ `ir`); 400 {message, cell, step} |
| POST pipelines/validate                      | {path, parameters?}       | 200 report {ok, errors, steps, variables, metrics} |
| POST runs                                    | {path, parameters, backend} | 201 {id, backend} |
| GET  runs                                    | ?limit=N                  | 200 {runs: [...]} newest first |
| GET  runs/{id}                               |                           | 200 run JSON |
| POST runs/{id}/cancel                        |                           | 200 run JSON; 409 when it already finished |
| POST runs/{id}/rerun                         |                           | 201 {id}: the same notebook, same parameters |
| POST runs/{id}/steps/{step}/run-from         |                           | 201 {id}: re-runs step + downstream, upstream from cache |
| GET  runs/{id}/steps/{step}/logs             | ?offset=N (bytes)         | 200 {text, offset, complete, state} |

Following a running step's log: call `logs?offset=0`, append `text`, call again with
the returned `offset` until `complete` is true (the step has finished and the whole
file was returned). Each answer carries at most 256 KiB.

`path` is a notebook path relative to the Jupyter root directory (as JupyterLab shows
it). Absolute paths, `..` segments and symlinks leading out of the root are refused.
`{step}` is the pipeline task name (as in the run JSON) or the notebook step name.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path, PurePosixPath
from typing import Any

from tornado import web

from kubelab.pipelines.errors import KubelabError, NotFoundError

from .handlers import KubelabHandler


class ForbiddenPathError(KubelabError):
    status_code = 403


def resolve_notebook(root: str | os.PathLike[str], path: Any) -> Path:
    """`path` (relative to the Jupyter root) as an absolute file inside `root`."""
    if not isinstance(path, str) or not path.strip():
        raise KubelabError("'path' must be a notebook path relative to the Jupyter root")
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
        raise NotFoundError(f"notebook {path!r} does not exist", path=path)
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


def _compile(
    full: Path, *, with_ir: bool, content: dict[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    from kubelab.pipelines.notebook import codegen, compile_notebook
    from kubelab.pipelines.notebook.run import warm_engine_for

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
    warm_engine_for(pipeline)
    if with_ir:
        body["ir"] = pipeline.pipeline_spec()
    return pipeline, body


def _check_parameters(pipeline: Any, parameters: Any) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise KubelabError("'parameters' must be an object of name: value")
    known = pipeline.parameters
    for name in parameters:
        if name not in known:
            raise KubelabError(
                f"unknown parameter {name!r}; parameters: {', '.join(known) or '(none)'}",
                parameter=name,
                valid=list(known),
            )
    return dict(parameters)


class RunsBase(KubelabHandler):
    @property
    def root_dir(self) -> str:
        root = self.settings.get("server_root_dir")
        if not root:
            root = getattr(self.contents_manager, "root_dir", None) or os.getcwd()
        return str(root)

    def notebook(self, path: Any) -> Path:
        return resolve_notebook(self.root_dir, path)

    def with_path(self, run: dict[str, Any]) -> dict[str, Any]:
        run.setdefault("backend", "local")
        run["path"] = relative_path(self.root_dir, run.get("source"))
        return run

    async def find_run(self, run_id: str) -> dict[str, Any]:
        app = self.extensionapp
        local = app.local_backend()
        try:
            return self.with_path(await asyncio.to_thread(local.get_run, run_id))
        except NotFoundError:
            if not app.kfp_endpoint:
                raise
        return self.with_path(await asyncio.to_thread(app.backend("kubernetes").get_run, run_id))

    async def start(
        self, full: Path, parameters: Any, backend_name: str | None, run_name: str | None = None
    ) -> tuple[str, str]:
        backend = self.extensionapp.backend(backend_name)

        def work() -> str:
            pipeline, _ = _compile(full, with_ir=False)
            params = _check_parameters(pipeline, parameters)
            return backend.start_run(
                pipeline.pipeline_spec(),
                params,
                source=str(full),
                task_metadata=pipeline.task_metadata(),
                run_name=run_name,
                origin={"arguments": params} if params else None,
            )

        return await asyncio.to_thread(work), backend.name


class CompileHandler(RunsBase):
    @web.authenticated
    async def post(self) -> None:
        body = self.read_json()
        full = self.notebook(body.get("path"))
        content = body.get("content")
        if content is not None and not isinstance(content, dict):
            raise KubelabError("'content' must be a notebook (nbformat JSON object)")
        _, answer = await asyncio.to_thread(
            _compile, full, with_ir=bool(body.get("ir", True)), content=content
        )
        answer["path"] = body["path"]
        self.write_json(answer)


class ValidateHandler(RunsBase):
    @web.authenticated
    async def post(self) -> None:
        body = self.read_json()
        full = self.notebook(body.get("path"))
        try:
            from kubelab.pipelines.notebook import validate_notebook
        except (ImportError, AttributeError):
            raise KubelabError("notebook validation is not available in this version") from None
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise KubelabError("'parameters' must be an object of name: value")
        report = await asyncio.to_thread(validate_notebook, full, parameters=parameters)
        answer = report.to_json()
        answer["notebook"] = body["path"]
        self.write_json(answer)


class RunsHandler(RunsBase):
    @web.authenticated
    async def get(self) -> None:
        try:
            limit = int(self.get_query_argument("limit", "100"))
        except ValueError:
            raise KubelabError("'limit' must be an integer") from None
        local = self.extensionapp.local_backend()
        runs = await asyncio.to_thread(local.list_runs, max(1, min(limit, 1000)))
        self.write_json({"runs": [self.with_path(r) for r in runs]})

    @web.authenticated
    async def post(self) -> None:
        body = self.read_json()
        full = self.notebook(body.get("path"))
        run_id, backend = await self.start(full, body.get("parameters"), body.get("backend"))
        self.write_json({"id": run_id, "backend": backend}, status=201)


class RunHandler(RunsBase):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        self.write_json(await self.find_run(run_id))


class CancelHandler(RunsBase):
    @web.authenticated
    async def post(self, run_id: str) -> None:
        run = await self.find_run(run_id)
        backend = self.extensionapp.backend(run["backend"])
        self.write_json(self.with_path(await asyncio.to_thread(backend.cancel, run["id"])))


def _source_of(handler: RunsBase, run: dict[str, Any]) -> Path:
    path = relative_path(handler.root_dir, run.get("source"))
    if path is None:
        raise KubelabError(
            f"run {run['id']} was not started from a notebook under this Jupyter root",
            run=run["id"],
        )
    return handler.notebook(path)


class RerunHandler(RunsBase):
    @web.authenticated
    async def post(self, run_id: str) -> None:
        run = await self.find_run(run_id)
        if run["backend"] != "local":
            raise KubelabError("re-run is only available for local runs", run=run["id"])
        full = _source_of(self, run)

        def work() -> str:
            pipeline, _ = _compile(full, with_ir=False)
            # Same parameters, minus any the notebook no longer declares.
            params = {k: v for k, v in run["parameters"].items() if k in pipeline.parameters}
            return self.extensionapp.local_backend().start_run(
                pipeline.pipeline_spec(),
                params,
                source=str(full),
                task_metadata=pipeline.task_metadata(),
                run_name=run.get("name"),
                origin={"rerun_of": run["id"], "rerun_of_number": run.get("number")},
            )

        new_id = await asyncio.to_thread(work)
        self.write_json({"id": new_id, "backend": "local", "rerun_of": run["id"]}, status=201)


class RunFromHandler(RunsBase):
    @web.authenticated
    async def post(self, run_id: str, step: str) -> None:
        run = await self.find_run(run_id)
        backend = self.extensionapp.backend(run["backend"])
        full = _source_of(self, run)

        def work() -> str:
            pipeline, _ = _compile(full, with_ir=False)
            return backend.run_from(
                run["id"], step, pipeline.pipeline_spec(), task_metadata=pipeline.task_metadata()
            )

        new_id = await asyncio.to_thread(work)
        self.write_json(
            {"id": new_id, "backend": backend.name, "from_run": run["id"], "from_step": step},
            status=201,
        )


class LogsHandler(RunsBase):
    @web.authenticated
    async def get(self, run_id: str, step: str) -> None:
        try:
            offset = int(self.get_query_argument("offset", "0"))
        except ValueError:
            raise KubelabError("'offset' must be an integer") from None
        run = await self.find_run(run_id)
        backend = self.extensionapp.backend(run["backend"])
        self.write_json(await asyncio.to_thread(backend.logs, run["id"], step, offset))


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
    ]
