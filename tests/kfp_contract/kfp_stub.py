"""A stand-in for Kubeflow Pipelines 2.17's API server, for contract tests (loopback HTTP).

Which routes exist, their parameters and every request and response shape come from
KFP's own swagger files next to this module (see README.md): a route the swagger does
not have answers 404 (501 when only the method is wrong, as KFP's grpc-gateway does),
a request body is checked as the gateway's protojson does (DiscardUnknown=false: an
unknown field is a 400; proto names or their lowerCamel JSON names), and every answer
of the stub is itself checked against the swagger (a mismatch is recorded in
`problems`, which the fixtures assert empty). The IR of a run goes through the real
`kfp-pipeline-spec` protobuf, as KFP's v2 template parser does.

Behaviour beyond the shapes follows KFP's Go server at tag 2.17.0, named at each rule
(`backend/src/apiserver/...`). What the cluster would do next (Argo running the
workflow, KFP's persistence agent reporting it) is simulated by `simulate_argo`.
Gateways in front of KFP (a login redirect, a login page) are `gateway` modes.
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

HERE = Path(__file__).parent
SWAGGER_V2 = json.loads((HERE / "kfp_api_single_file.swagger.json").read_text())
SWAGGER_V1 = json.loads((HERE / "kfp_api_v1beta1_single_file.swagger.json").read_text())
AUDIENCE = "pipelines.kubeflow.org"  # common.DefaultTokenReviewAudience
ZERO_TIME = "1970-01-01T00:00:00Z"  # timestamppb.New(time.Unix(0, 0))
GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # an Argo node's unset startedAt, through Unix()
# grpc code -> HTTP status (grpc-gateway's HTTPStatusFromCode)
HTTP_STATUS = {3: 400, 5: 404, 6: 409, 7: 403, 9: 400, 12: 501, 13: 500, 16: 401}


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Invalid(Exception):
    """A value that does not fit its swagger schema."""


# -- the swagger: routes and a protojson-like checker ---------------------------------


@dataclass
class Operation:
    method: str
    template: str
    operation_id: str
    pattern: re.Pattern[str]
    params: dict[str, str]  # name -> "path" | "query" | "body"
    body_schema: dict[str, Any] | None
    response_schema: dict[str, Any] | None
    definitions: dict[str, Any]


def _pattern(template: str) -> re.Pattern[str]:
    """A gateway path template as a regex: `{x}` is one segment; `:verb` is literal."""
    regex = ""
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{"):
            name = re.sub(r"\W", "_", part[1:-1])
            regex += f"(?P<{name}>[^/]+?)"
        else:
            regex += re.escape(part)
    return re.compile(f"^{regex}$")


def operations(swagger: dict[str, Any]) -> list[Operation]:
    found = []
    for template, methods in swagger["paths"].items():
        for method, op in methods.items():
            params = {p["name"]: p["in"] for p in op.get("parameters", [])}
            body = next((p["schema"] for p in op.get("parameters", []) if p["in"] == "body"), None)
            found.append(
                Operation(
                    method.upper(),
                    template,
                    op["operationId"],
                    _pattern(template),
                    params,
                    body,
                    op["responses"].get("200", {}).get("schema"),
                    swagger["definitions"],
                )
            )
    # Templates with a custom verb first: "runs/{id}:terminate" before "runs/{id}".
    return sorted(found, key=lambda o: ":" not in o.template.rsplit("/", 1)[-1])


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def check(
    value: Any, schema: dict[str, Any], defs: dict[str, Any], where: str, *, request: bool
) -> None:
    """Raise `Invalid` unless `value` fits `schema` as protojson reads (request) or
    writes (UseProtoNames, KFP's CustomMarshaler) it."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    kind = schema.get("type")
    if "properties" in schema or kind == "object":
        if not isinstance(value, dict):
            raise Invalid(f"{where}: expected an object, got {type(value).__name__}")
        props = schema.get("properties")
        if props is None:  # google.protobuf.Struct or a map
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and extra:
                for key, item in value.items():
                    check(item, extra, defs, f"{where}.{key}", request=request)
            return
        names = dict(props)
        if request:
            names.update({_camel(k): v for k, v in props.items()})
        for key, item in value.items():
            if key not in names:
                raise Invalid(f'unknown field "{key}" in {where}')
            if item is not None:
                check(item, names[key], defs, f"{where}.{key}", request=request)
        return
    if kind == "array":
        if not isinstance(value, list):
            raise Invalid(f"{where}: expected a list")
        for index, item in enumerate(value):
            check(item, schema.get("items", {}), defs, f"{where}[{index}]", request=request)
        return
    if "enum" in schema:
        if value in schema["enum"] or (request and isinstance(value, int)):
            return
        raise Invalid(f"{where}: invalid value {value!r} for enum")
    fmt = schema.get("format")
    if kind == "string" and fmt in ("int64", "uint64"):
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return
        if request and isinstance(value, int) and not isinstance(value, bool):
            return
        raise Invalid(f"{where}: invalid int64 {value!r}")
    if kind == "string":
        if not isinstance(value, str):
            raise Invalid(f"{where}: expected a string, got {value!r}")
        if fmt == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise Invalid(f"{where}: invalid timestamp {value!r}") from None
        return
    if kind == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
        raise Invalid(f"{where}: expected an integer, got {value!r}")
    if kind == "boolean" and not isinstance(value, bool):
        raise Invalid(f"{where}: expected a boolean, got {value!r}")
    if kind == "number" and not isinstance(value, int | float):
        raise Invalid(f"{where}: expected a number, got {value!r}")


# -- KFP's state ------------------------------------------------------------------------


def now_rfc3339(seconds: float | None = None) -> str:
    moment = datetime.fromtimestamp(int(seconds if seconds is not None else time.time()), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Experiment:
    experiment_id: str
    display_name: str
    namespace: str
    description: str = ""
    created_at: float = field(default_factory=time.time)

    def to_api(self) -> dict[str, Any]:
        body = {
            "experiment_id": self.experiment_id,
            "display_name": self.display_name,
            "created_at": now_rfc3339(self.created_at),
            "storage_state": "AVAILABLE",
            "last_run_created_at": ZERO_TIME,
        }
        if self.description:
            body["description"] = self.description
        if self.namespace:
            body["namespace"] = self.namespace
        return body


@dataclass
class Run:
    run_id: str
    experiment_id: str
    namespace: str
    display_name: str
    description: str
    pipeline_spec: dict[str, Any]
    parameters: dict[str, Any]
    workflow: dict[str, Any]
    state: str = "PENDING"
    created_at: float = field(default_factory=time.time)
    finished_at: float = 0
    task_details: list[dict[str, Any]] = field(default_factory=list)
    storage_state: str = "AVAILABLE"

    def to_api(self) -> dict[str, Any]:
        """As `toApiRun` (server/api_converter.go) writes it: unset times are 1970."""
        body: dict[str, Any] = {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "display_name": self.display_name,
            "storage_state": self.storage_state,
            "pipeline_spec": self.pipeline_spec,
            "state": self.state,
            "created_at": now_rfc3339(self.created_at),
            "scheduled_at": now_rfc3339(self.created_at),
            "finished_at": now_rfc3339(self.finished_at) if self.finished_at else ZERO_TIME,
            "state_history": [{"update_time": now_rfc3339(self.created_at), "state": "PENDING"}],
        }
        if self.description:
            body["description"] = self.description
        if self.parameters:
            body["runtime_config"] = {"parameters": self.parameters}
        if self.task_details:
            body["run_details"] = {"task_details": self.task_details}
        return body


def _pipeline_name_ok(name: str) -> bool:
    # template/v2_template.go uses regexp.MatchString, which is not anchored.
    return (
        re.search(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name)
        is not None
    )


def parse_pipeline_spec(spec: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The IR (and PlatformSpec) as KFP's `NewV2SpecTemplate` reads a run's pipeline_spec:
    through the real protobuf, unknown fields refused, schema 2.1.0, a name, a root."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    if not isinstance(spec, dict):
        raise RpcError(3, "Invalid input error: no pipeline spec is provided")
    ir, platform = (
        (spec["pipeline_spec"], spec.get("platform_spec"))
        if "pipeline_spec" in spec
        else (spec, None)
    )
    try:
        parsed = json_format.ParseDict(ir, pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as error:
        # isPipelineSpec() fails, so the document is not taken as a pipeline spec at all.
        raise RpcError(3, f"Invalid input error: no pipeline spec is provided ({error})") from None
    if parsed.schema_version != "2.1.0":
        raise RpcError(
            3,
            f"KFP only supports schema version 2.1.0, but the pipeline spec has version {parsed.schema_version}",
        )
    if not parsed.pipeline_info.name or not _pipeline_name_ok(parsed.pipeline_info.name):
        raise RpcError(3, "invalid v2 pipeline spec: name is empty or invalid")
    if not parsed.HasField("root"):
        raise RpcError(3, "invalid v2 pipeline spec: root component is empty")
    if platform is not None:
        try:
            json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
        except json_format.ParseError as error:
            raise RpcError(3, f"cannot unmarshal platform specific configs: {error}") from None
    return ir, platform


def workflow_for(run_id: str, ir: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The Argo Workflow KFP's argocompiler makes of the IR, reduced to what is checked:
    its namespace, labels and the root DAG (a driver and an executor per root task)."""
    name = f"{ir['pipelineInfo']['name']}-{uuid.uuid4().hex[:5]}"
    tasks = []
    for task_name in (ir.get("root", {}).get("dag", {}) or {}).get("tasks", {}):
        tasks.append({"name": f"{task_name}-driver", "template": "system-container-driver"})
        tasks.append(
            {
                "name": task_name,
                "template": "system-container-executor",
                "depends": f"{task_name}-driver.Succeeded",
            }
        )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": namespace or "kubeflow",
            "labels": {"pipeline/runid": run_id, "pipelines.kubeflow.org/v2_component": "true"},
            "creationTimestamp": now_rfc3339(),
        },
        "spec": {
            "entrypoint": "entrypoint",
            "templates": [{"name": "root", "dag": {"tasks": tasks}}],
        },
        "status": {},
    }


# -- the server -------------------------------------------------------------------------


class KfpStub:
    """KFP's API server on 127.0.0.1 in `multi_user` mode or not.

    Multi-user: a caller is the user of its bearer token (`add_token`, a TokenReview
    with audience pipelines.kubeflow.org) and may use the namespaces `grant`ed to it.
    `requests` records every request: (method, raw path, operationId or None, whether
    it had a token, body). `pod_logs` is what a pod's log reads while the pod exists.
    """

    def __init__(self, *, multi_user: bool = False) -> None:
        self.multi_user = multi_user
        self.ops = [*operations(SWAGGER_V2), *operations(SWAGGER_V1)]
        self.experiments: dict[str, Experiment] = {}
        self.runs: dict[str, Run] = {}
        self.tokens: dict[str, tuple[str, str]] = {}  # token -> (user, audience)
        self.grants: dict[str, set[str]] = {}
        self.pod_logs: dict[str, str] = {}
        self.requests: list[tuple[str, str, str | None, bool, Any]] = []
        self.problems: list[str] = []
        self.gateway: str | None = None  # "login_redirect" | "login_page"
        self.lock = threading.RLock()
        if not multi_user:  # the API server creates it at start in single-user mode
            self._new_experiment("Default", "")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> KfpStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- test helpers ---------------------------------------------------------------

    def add_token(self, token: str, user: str, audience: str = AUDIENCE) -> None:
        self.tokens[token] = (user, audience)

    def grant(self, user: str, namespace: str) -> None:
        self.grants.setdefault(user, set()).add(namespace)

    def operation_ids(self) -> set[str]:
        return {r[2] for r in self.requests if r[2]}

    def _new_experiment(self, name: str, namespace: str, description: str = "") -> Experiment:
        experiment = Experiment(str(uuid.uuid4()), name, namespace, description)
        self.experiments[experiment.experiment_id] = experiment
        return experiment

    def create_run_elsewhere(self, ir: dict[str, Any], namespace: str = "") -> Run:
        """A run another client (the KFP UI, kfp.Client) started in `namespace`."""
        experiment = self._new_experiment(f"other-{uuid.uuid4().hex[:4]}", namespace)
        return self._new_run(experiment, ir["pipelineInfo"]["name"], "", ir, {})

    def simulate_argo(self, run_id: str, steps: dict[str, str], phase: str | None = None) -> None:
        """Argo runs the workflow and KFP's persistence agent reports it.

        `steps` maps IR root tasks to an Argo phase: Pending, Running, Succeeded, Failed,
        or "Cached" (the driver found a cache hit: the executor pod is Skipped) and
        "Skipped" (a condition was false). `phase` is the workflow's (default: from the
        steps). A terminated workflow (activeDeadlineSeconds 0) fails what still runs.
        """
        with self.lock:
            run = self.runs[run_id]
            wf = run.workflow
            name = wf["metadata"]["name"]
            terminated = wf["spec"].get("activeDeadlineSeconds") == 0
            nodes: dict[str, dict[str, Any]] = {}
            stamp = now_rfc3339()

            def node(
                path: str,
                display: str,
                kind: str,
                template: str,
                node_phase: str,
                children: list[str],
            ) -> str:
                node_id = name if path == name else f"{name}-{zlib.crc32(path.encode())}"
                entry: dict[str, Any] = {
                    "id": node_id,
                    "name": path,
                    "displayName": display,
                    "type": kind,
                    "templateName": template,
                    "phase": node_phase,
                    "children": children,
                }
                if node_phase not in ("Pending", "Skipped", "Omitted"):
                    entry["startedAt"] = stamp
                if node_phase in ("Succeeded", "Failed", "Error"):
                    entry["finishedAt"] = stamp
                if node_phase == "Failed":
                    entry["message"] = "terminated" if terminated else "Error (exit code 1)"
                nodes[node_id] = entry
                return node_id

            root_children = []
            for task, task_phase in steps.items():
                if (
                    terminated
                    and task_phase in ("Pending", "Running")
                    and phase in ("Failed", "Error")
                ):
                    task_phase = "Failed"
                base = f"{name}.root.{task}"
                driver_phase = "Pending" if task_phase == "Pending" else "Succeeded"
                root_children.append(
                    node(
                        f"{base}-driver",
                        f"{task}-driver",
                        "Pod",
                        "system-container-driver",
                        driver_phase,
                        [],
                    )
                )
                if task_phase == "Skipped":
                    root_children.append(
                        node(base, task, "Skipped", "system-container-executor", "Skipped", [])
                    )
                    continue
                executor_phase = "Skipped" if task_phase == "Cached" else task_phase
                executor = node(
                    f"{base}.executor",
                    "executor",
                    "Skipped" if task_phase == "Cached" else "Pod",
                    "system-container-impl",
                    executor_phase,
                    [],
                )
                dag_phase = "Succeeded" if task_phase == "Cached" else task_phase
                root_children.append(
                    node(base, task, "DAG", "system-container-executor", dag_phase, [executor])
                )
            ir_tasks = list(
                ((parse_ir(run.pipeline_spec).get("root") or {}).get("dag") or {}).get("tasks", {})
            )
            done = all(
                steps.get(t) in ("Succeeded", "Cached", "Skipped", "Failed") for t in ir_tasks
            )
            if phase is None:
                failed = any(p == "Failed" for p in steps.values())
                phase = ("Failed" if failed else "Succeeded") if done else "Running"
            root = node(f"{name}.root", "root", "DAG", "root", phase, root_children)
            driver = node(
                f"{name}.root-driver", "root-driver", "Pod", "system-dag-driver", "Succeeded", []
            )
            node(name, name, "DAG", "entrypoint", phase, [driver, root])
            wf["status"] = {"phase": phase, "startedAt": stamp, "nodes": nodes}
            if phase in ("Succeeded", "Failed", "Error"):
                wf["status"]["finishedAt"] = stamp
            self._report(run)

    def _report(self, run: Run) -> None:
        """KFP's persistence agent: the run's state and tasks from the workflow
        (`toModelTasks`, `RuntimeState.ToV2`; nodes sorted by id)."""
        wf = run.workflow
        phase = wf["status"].get("phase", "")
        states = {
            "Pending": "PENDING",
            "Running": "RUNNING",
            "Succeeded": "SUCCEEDED",
            "Skipped": "SKIPPED",
            "Failed": "FAILED",
            "Error": "FAILED",
        }
        if not (run.state == "CANCELING" and phase == "Running"):
            run.state = states.get(phase, "RUNTIME_STATE_UNSPECIFIED")
        if run.state in ("SUCCEEDED", "FAILED"):
            run.finished_at = run.finished_at or time.time()
        created = wf["metadata"]["creationTimestamp"]
        details = []
        nodes = wf["status"]["nodes"]
        for node_id in sorted(nodes):
            n = nodes[node_id]
            detail = {
                "run_id": run.run_id,
                "task_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run.run_id}/{node_id}")),
                "display_name": n["displayName"],
                "create_time": created,
                "start_time": n.get("startedAt") or GO_ZERO_TIME,
                "end_time": n.get("finishedAt") or GO_ZERO_TIME,
                "state": states.get(n["phase"], "RUNTIME_STATE_UNSPECIFIED"),
            }
            if n["children"]:
                detail["child_tasks"] = [{"pod_name": c} for c in n["children"]]
            details.append(detail)
        run.task_details = details

    # -- HTTP --------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                stub._serve(self, "GET")

            def do_POST(self) -> None:
                stub._serve(self, "POST")

            def do_DELETE(self) -> None:
                stub._serve(self, "DELETE")

            def do_PATCH(self) -> None:
                stub._serve(self, "PATCH")

        return Handler

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        split = urlsplit(handler.path)
        token = (handler.headers.get("Authorization") or "").removeprefix("Bearer ") or None
        if self.gateway and split.path.startswith("/apis/"):
            self.requests.append((method, handler.path, None, token is not None, None))
            if self.gateway == "login_redirect":
                self._send(
                    handler, 302, b"", "text/html", {"Location": f"{self.url}/dex/auth?req=1"}
                )
            else:
                self._send(
                    handler,
                    200,
                    b"<html><body>Log in to Kubeflow</body></html>",
                    "text/html; charset=utf-8",
                )
            return
        # gorilla/mux (KFP's top router): match on the decoded path, 301 to the cleaned one.
        decoded = unquote(split.path)
        cleaned = posixpath.normpath(decoded) + (
            "/" if decoded.endswith("/") and decoded != "/" else ""
        )
        if cleaned != decoded:
            self.requests.append((method, handler.path, None, token is not None, None))
            self._send(
                handler,
                301,
                b"",
                "text/html",
                {"Location": cleaned + (f"?{split.query}" if split.query else "")},
            )
            return
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        log = re.fullmatch(r"/apis/v1alpha1/runs/([^/]+)/nodes/([^/]+)/log", decoded)
        if log and method == "GET":  # main.go: topMux.HandleFunc(".../log", ReadRunLogV1)
            self.requests.append((method, handler.path, "ReadRunLogV1", token is not None, None))
            self._send(
                handler, 200, self._read_log(*log.groups()).encode(), "text/plain; charset=utf-8"
            )
            return
        matched = [(op, m) for op in self.ops if (m := op.pattern.match(decoded))]
        allowed = [(op, m) for op, m in matched if op.method == method]
        operation = allowed[0] if allowed else None
        self.requests.append(
            (
                method,
                handler.path,
                operation[0].operation_id if operation else None,
                token is not None,
                raw.decode(errors="replace") or None,
            )
        )
        try:
            if operation is None:
                raise RpcError(12, "Method Not Allowed") if matched else RpcError(5, "Not Found")
            op, match = operation
            body = self._request_body(op, raw)
            unknown = [q for q in query if op.params.get(q) != "query"]
            if unknown:
                raise RpcError(3, f"unexpected query parameter {unknown[0]!r}")
            path_params = match.groupdict()
            with self.lock:
                answer = self._dispatch(op.operation_id, path_params, query, body, token)
            if op.response_schema is not None and op.operation_id != "HealthzService_GetHealthz":
                try:
                    check(
                        answer, op.response_schema, op.definitions, op.operation_id, request=False
                    )
                except Invalid as error:
                    self.problems.append(
                        f"stub answer to {op.operation_id} does not fit the swagger: {error}"
                    )
            self._send(handler, 200, json.dumps(answer).encode(), "application/json")
        except RpcError as error:
            status = HTTP_STATUS.get(error.code, 500)
            self._send(
                handler,
                status,
                json.dumps({"code": error.code, "message": error.message}).encode(),
                "application/json",
            )

    def _request_body(self, op: Operation, raw: bytes) -> Any:
        if op.body_schema is None:
            return None
        try:
            body = json.loads(raw or b"{}")
        except ValueError as error:
            raise RpcError(3, f"proto: syntax error: {error}") from None
        try:
            check(body, op.body_schema, op.definitions, "request", request=True)
        except Invalid as error:
            raise RpcError(3, f"proto: {error}") from None
        return body

    # -- authentication and authorization (resource/resource_manager.go IsAuthorized) --

    def _user(self, token: str | None) -> str:
        user, audience = self.tokens.get(token or "", (None, None))
        if user is None or audience != AUDIENCE:
            raise RpcError(
                16, "Failed to check authorization. User identity is empty in the request header"
            )
        return user

    def _authorize(self, token: str | None, namespace: str, what: str) -> None:
        if not self.multi_user:
            return
        if not namespace:
            raise RpcError(
                3, f"Invalid input error: {what} cannot have an empty namespace in multi-user mode"
            )
        user = self._user(token)
        if namespace not in self.grants.get(user, set()):
            raise RpcError(
                7,
                f"Failed to authorize with API: PermissionDenied: User '{user}' is not authorized with reason: no access to namespace {namespace}",
            )

    # -- operations ----------------------------------------------------------------------

    def _dispatch(
        self, op: str, path: dict[str, str], query: dict[str, str], body: Any, token: str | None
    ) -> dict[str, Any]:
        if op == "HealthzService_GetHealthz":  # main.go healthzResponse: extra fields too
            return {
                "commit_sha": "unknown",
                "tag_name": "2.17.0",
                "multi_user": self.multi_user,
                "pipeline_store": "database",
            }
        if op == "ExperimentService_CreateExperiment":
            return self._create_experiment(body, token)
        if op == "ExperimentService_ListExperiments":
            return self._list_experiments(query, token)
        if op == "RunService_CreateRun":
            return self._create_run(body, token)
        if op in ("RunService_GetRun", "RunService_GetRunV1", "RunService_TerminateRun"):
            run = self.runs.get(path["run_id"])
            if run is None:
                raise RpcError(
                    5, f"Failed to get a run: ResourceNotFoundError: Run {path['run_id']} not found"
                )
            self._authorize(token, run.namespace, "A run")
            if op == "RunService_GetRun":
                return run.to_api()
            if op == "RunService_GetRunV1":
                return self._run_v1(run)
            return self._terminate(run)
        if op == "RunService_ListRuns":
            return self._list_runs(query, token)
        raise RpcError(12, f"the stub does not implement {op}")

    def _create_experiment(self, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        name = body.get("display_name") or body.get("displayName") or ""
        if not name:
            raise RpcError(3, "Invalid input error: Experiment must have a non-empty name")
        namespace = (body.get("namespace") or "") if self.multi_user else ""
        self._authorize(token, namespace, "An experiment")
        if any(
            e.display_name == name and e.namespace == namespace for e in self.experiments.values()
        ):
            raise RpcError(
                6,
                f"Failed to create a new experiment. The name {name} already exists. Please specify a new name",
            )
        return self._new_experiment(name, namespace, body.get("description") or "").to_api()

    def _list_experiments(self, query: dict[str, str], token: str | None) -> dict[str, Any]:
        namespace = query.get("namespace", "") if self.multi_user else ""
        self._authorize(token, namespace, "An experiment")
        wanted = self._filter_name(query.get("filter", ""))
        found = [
            e
            for e in self.experiments.values()
            if e.namespace == namespace and (wanted is None or e.display_name == wanted)
        ]
        size = int(query.get("page_size") or 20)
        return (
            {"experiments": [e.to_api() for e in found[:size]], "total_size": len(found)}
            if found
            else {}
        )

    @staticmethod
    def _filter_name(encoded: str) -> str | None:
        """The name of a `display_name EQUALS` filter (list_request_util.go parseAPIFilter)."""
        if not encoded:
            return None
        text = unquote(encoded).replace('"stringValue":', '"string_value":')
        try:
            predicates = json.loads(text)["predicates"]
        except (ValueError, KeyError, TypeError):
            raise RpcError(
                3, f"Invalid input error: failed to parse valid filter from {encoded!r}"
            ) from None
        for p in predicates:
            if p.get("key") in ("display_name", "name") and p.get("operation") in ("EQUALS", 1):
                return str(p.get("string_value"))
        raise RpcError(3, f"the stub only filters by display_name EQUALS, got {predicates}")

    def _new_run(
        self,
        experiment: Experiment,
        name: str,
        description: str,
        spec: dict[str, Any],
        parameters: dict[str, Any],
    ) -> Run:
        ir, _ = parse_pipeline_spec(spec)
        run_id = str(uuid.uuid4())
        run = Run(
            run_id,
            experiment.experiment_id,
            experiment.namespace,
            name,
            description,
            spec,
            parameters,
            workflow_for(run_id, ir, experiment.namespace),
        )
        self.runs[run_id] = run
        return run

    def _create_run(self, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        """server/run_server.go createRun + resource_manager.go GetValidExperimentNamespacePair."""
        if body.get("plugins_output") is not None:
            raise RpcError(3, "plugins_output must not be set by the client")
        name = body.get("display_name") or body.get("displayName") or ""
        if not name:
            raise RpcError(
                3,
                "Failed to create a run due to invalid name: Invalid input error: The run name is empty. Please specify a valid name",
            )
        experiment_id = body.get("experiment_id") or body.get("experimentId") or ""
        if not experiment_id:
            if self.multi_user:
                raise RpcError(
                    3,
                    "Failed to create a run due to invalid experimentId and namespace combination: Invalid input error: Experiment id can not be empty in multi-user mode",
                )
            experiment_id = next(
                e.experiment_id for e in self.experiments.values() if e.display_name == "Default"
            )
        experiment = self.experiments.get(experiment_id)
        if experiment is None:
            raise RpcError(
                5,
                f"Failed to fetch namespace for experiment {experiment_id}: ResourceNotFoundError: Experiment {experiment_id} not found",
            )
        self._authorize(token, experiment.namespace, "A run")
        spec = body.get("pipeline_spec") or body.get("pipelineSpec")
        if spec is None:
            raise RpcError(3, "Invalid input error: no pipeline spec is provided")
        config = body.get("runtime_config") or body.get("runtimeConfig") or {}
        run = self._new_run(
            experiment, name, body.get("description") or "", spec, config.get("parameters") or {}
        )
        return run.to_api()

    def _list_runs(self, query: dict[str, str], token: str | None) -> dict[str, Any]:
        """run_server.go listRuns + list/list.go (page size 20 by default, at most 200;
        a page token must agree with sort_by and filter)."""
        namespace = query.get("namespace", "") if self.multi_user else ""
        experiment_id = query.get("experiment_id", "")
        if experiment_id:
            namespace = (
                self.experiments[experiment_id].namespace
                if experiment_id in self.experiments
                else ""
            )
        self._authorize(token, namespace, "A run")
        sort_by = query.get("sort_by", "")
        if sort_by and not re.fullmatch(
            r"(created_at|display_name|name|id|run_id)( (asc|desc))?", sort_by
        ):
            raise RpcError(3, f'Received invalid sort by format "{sort_by}"')
        size = int(query.get("page_size") or 0)
        if size < 0:
            raise RpcError(3, f"The page size should be greater than 0. Got {size}")
        size = min(size or 20, 200)
        offset = 0
        if query.get("page_token"):
            try:
                token_data = json.loads(base64.urlsafe_b64decode(query["page_token"]))
            except ValueError:
                raise RpcError(3, "Invalid input error: invalid page token") from None
            if sort_by and sort_by != token_data["sort_by"]:
                raise RpcError(
                    3, "page token does not match the supplied sort by and/or filtering criteria"
                )
            sort_by, offset = token_data["sort_by"], token_data["offset"]
        runs = [
            r
            for r in self.runs.values()
            if (not namespace or r.namespace == namespace)
            and (not experiment_id or r.experiment_id == experiment_id)
        ]
        runs.sort(key=lambda r: (r.created_at, r.run_id), reverse=sort_by.endswith("desc"))
        page = runs[offset : offset + size]
        answer: dict[str, Any] = {"total_size": len(runs)}
        if page:
            answer["runs"] = [r.to_api() for r in page]
        if offset + size < len(runs):
            answer["next_page_token"] = base64.urlsafe_b64encode(
                json.dumps({"sort_by": sort_by, "offset": offset + size}).encode()
            ).decode()
        return answer

    def _terminate(self, run: Run) -> dict[str, Any]:
        """storage/run_store.go TerminateRun, then the workflow patch (activeDeadlineSeconds 0)."""
        if run.state not in ("PAUSED", "PENDING", "RUNNING", "RUNTIME_STATE_UNSPECIFIED"):
            raise RpcError(
                3,
                f"Failed to terminate a run {run.run_id}: Invalid input error: Failed to terminate a run {run.run_id}. Row not found",
            )
        run.state = "CANCELING"
        run.workflow["spec"]["activeDeadlineSeconds"] = 0
        return {}

    def _run_v1(self, run: Run) -> dict[str, Any]:
        """v1beta1 GetRun: the only REST answer that holds the workflow manifest."""
        answer: dict[str, Any] = {
            "run": {
                "id": run.run_id,
                "name": run.display_name,
                "created_at": now_rfc3339(run.created_at),
                "storage_state": "STORAGESTATE_AVAILABLE",
            },
        }
        if run.workflow.get("status"):
            answer["pipeline_runtime"] = {"workflow_manifest": json.dumps(run.workflow)}
        return answer

    def _read_log(self, run_id: str, pod: str) -> str:
        """server/run_log_server.go: 200 is written first, an error follows as JSON."""
        if run_id not in self.runs:
            message = f"Failed to read logs for run {run_id} due to run fetching error"
        elif pod in self.pod_logs:
            return self.pod_logs[pod]
        else:
            message = f'Failed to read logs for run {run_id}: pods "{pod}" not found'
        return json.dumps({"error_message": message, "error_details": message})


def parse_ir(spec: dict[str, Any]) -> dict[str, Any]:
    return spec.get("pipeline_spec", spec)
