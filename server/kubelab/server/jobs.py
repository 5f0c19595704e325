"""REST handlers for jobs (training, tuning, serving), dispatched by `kind`.

| method path                              | body / query                      | answer |
|------------------------------------------|-----------------------------------|--------|
| POST   jobs                              | {kind, spec, backend?, name?}     | 201 {id, kind, backend} |
| GET    jobs                              | ?kind=training&limit=N            | 200 {jobs: [...]} newest first |
| GET    jobs/{id}                         |                                   | 200 job JSON (steps, state, metrics, spec) |
| DELETE jobs/{id}                         |                                   | 200 {id, deleted: true}: stopped and forgotten |
| POST   jobs/{id}/cancel                  |                                   | 200 job JSON; 409 when it already finished |
| GET    jobs/{id}/metrics                 |                                   | 200 {series: {step: {metric: [{step, value, ts}]}}} |
| GET    jobs/{id}/steps/{step}/logs       | ?offset=N (bytes)                 | 200 {text, offset, complete, state} |

`kind` names a registered workload (`kubelab.workloads.registry`); its `validate`
checks `spec` (file paths in it are confined to the Jupyter root). An unknown kind or
backend, or a bad spec, is a 400 whose message names the field; an unknown job a 404.
Logs follow the same offset contract as run logs.
"""

from __future__ import annotations

from typing import Any

from kubelab.pipelines.errors import KubelabError

from .handlers import KubelabHandler, guarded, runs_code


class JobsHandler(KubelabHandler):
    @guarded
    async def get(self) -> None:
        kind = self.get_query_argument("kind", None)
        limit = self.int_argument("limit", 100)
        self.write_json({"jobs": await self.call(self.client.list_jobs, kind, limit)})

    @runs_code
    async def post(self) -> None:
        body = self.read_json()
        kind, spec = body.get("kind"), body.get("spec", {})
        if not isinstance(kind, str) or not kind:
            raise KubelabError("'kind' must name a kind of job, e.g. \"training\"", field="kind")
        backend = body.get("backend") or self.client.default_backend
        job_id = await self.call(self.client.create_job, kind, spec, backend, name=body.get("name"))
        self.write_json({"id": job_id, "kind": kind, "backend": backend}, status=201)


class JobHandler(KubelabHandler):
    @guarded
    async def get(self, job_id: str) -> None:
        self.write_json(await self.call(self.client.get_job, job_id))

    @guarded
    async def delete(self, job_id: str) -> None:
        job = await self.call(self.client.get_job, job_id)
        await self.call(self.client.delete_job, job["id"])
        self.write_json({"id": job["id"], "deleted": True})


class JobCancelHandler(KubelabHandler):
    @guarded
    async def post(self, job_id: str) -> None:
        self.write_json(await self.call(self.client.cancel_job, job_id))


class JobMetricsHandler(KubelabHandler):
    @guarded
    async def get(self, job_id: str) -> None:
        self.write_json({"series": await self.call(self.client.job_metrics, job_id)})


class JobLogsHandler(KubelabHandler):
    @guarded
    async def get(self, job_id: str, step: str) -> None:
        offset = self.int_argument("offset", 0)
        self.write_json(await self.call(self.client.job_logs, job_id, step, offset))


def job_handlers(prefix: str) -> list[tuple[str, Any]]:
    job = rf"{prefix}/jobs/(?P<job_id>[^/]+)"
    return [
        (rf"{prefix}/jobs", JobsHandler),
        (job, JobHandler),
        (rf"{job}/cancel", JobCancelHandler),
        (rf"{job}/metrics", JobMetricsHandler),
        (rf"{job}/steps/(?P<step>[^/]+)/logs", JobLogsHandler),
    ]
