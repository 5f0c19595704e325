"""kubelab's Kubeflow Pipelines client against KFP 2.17's API contract (`kfp_stub.py`),
in single-user and multi-user mode: what a notebook user does, request by request."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kfp_contract.kfp_env import NAMESPACE, USER, Kfp
from kfp_contract.kfp_stub import (
    SWAGGER_V1,
    SWAGGER_V2,
    KfpStub,
    operations,
    parse_ir,
    parse_pipeline_spec,
)

from kubelab.client import Client
from kubelab.client.backends import kubeflow
from kubelab.client.backends.kfp_http import KfpUnavailableError
from kubelab.pipelines.errors import ConflictError, ForbiddenError, KubelabError
from kubelab.pipelines.notebook import compile_notebook

SWAGGER_OPS = {op.operation_id for op in [*operations(SWAGGER_V2), *operations(SWAGGER_V1)]}
STEPS = ["load", "features", "baseline", "train"]


def task_names(notebook: Path) -> dict[str, str]:
    """Notebook step -> IR task."""
    return {meta["step"]: task for task, meta in compile_notebook(notebook).task_metadata().items()}


def by_step(run: dict, notebook: Path) -> dict[str, dict]:
    tasks = task_names(notebook)
    return {step: next(s for s in run["steps"] if s["name"] == tasks[step]) for step in tasks}


def post(url: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_notebook_runs_on_kfp_and_comes_back_as_its_steps(kfp: Kfp, notebook: Path) -> None:
    client = kfp.client()
    started = client.create_run_from_pipeline_package(notebook, {"rows": 5})
    assert started.backend == "kubernetes"

    # Accepted by KFP: in an experiment named after the notebook, in the user's
    # namespace, the IR through the real protobuf, an Argo workflow with the IR's tasks.
    stored = kfp.stub.runs[started.run_id]
    experiment = kfp.stub.experiments[stored.experiment_id]
    assert experiment.display_name == "train"
    assert experiment.namespace == (NAMESPACE if kfp.multi_user else "")
    ir, platform = parse_pipeline_spec(stored.pipeline_spec)
    assert ir == compile_notebook(notebook).pipeline_spec() and platform is None
    assert stored.parameters == {"rows": 5}
    workflow = stored.workflow
    assert workflow["metadata"]["namespace"] == (NAMESPACE if kfp.multi_user else "kubeflow")
    assert workflow["metadata"]["labels"]["pipeline/runid"] == started.run_id
    dag = [t["name"] for t in workflow["spec"]["templates"][0]["dag"]["tasks"]]
    for task in task_names(notebook).values():
        assert [f"{task}-driver", task] == [n for n in dag if n in (task, f"{task}-driver")]

    # Nothing ran yet: KFP's unset times (1970) are no times at all.
    run = client.get_run(started.run_id)
    assert run["state"] == "pending" and run["backend"] == "kubernetes"
    assert run["created_at"] and run["finished_at"] is None
    assert run["source"] == str(notebook.resolve())
    assert run["url"] == f"/pipeline/#/runs/details/{started.run_id}"
    steps = by_step(run, notebook)
    assert all(s["state"] == "pending" and s["started_at"] is None for s in steps.values())
    assert steps["train"]["cells"] == [5] and steps["load"]["cells"] == [2]

    # Argo starts the first step: the run and that step run, with no end and no duration.
    tasks = task_names(notebook)
    kfp.stub.simulate_argo(started.run_id, {tasks["load"]: "Running", tasks["features"]: "Pending"})
    steps = by_step(client.get_run(started.run_id), notebook)
    assert steps["load"]["state"] == "running" and steps["load"]["started_at"]
    assert steps["load"]["finished_at"] is None and steps["load"]["duration_s"] is None
    assert steps["features"]["state"] == "pending" and steps["features"]["started_at"] is None
    assert steps["train"]["state"] == "pending"
    assert client.get_run(started.run_id)["state"] == "running"

    # All done, one step from KFP's cache (its executor pod Skipped): cached, not failed.
    final = {task: "Succeeded" for task in tasks.values()} | {tasks["baseline"]: "Cached"}
    kfp.stub.simulate_argo(started.run_id, final)
    run = client.wait_for_run_completion(started.run_id, timeout=10)
    assert run["state"] == "succeeded" and run["finished_at"] >= run["created_at"]
    steps = by_step(run, notebook)
    assert steps["baseline"] | {"state": "succeeded", "cached": True} == steps["baseline"]
    assert not any(s["cached"] for n, s in steps.items() if n != "baseline")
    assert all(s["duration_s"] is not None and s["duration_s"] >= 0 for s in steps.values())
    assert steps["train"]["attempts"] == 1

    # The store keeps it (its notebook, last known state) and lists it beside local runs.
    assert client.store.get_run(started.run_id)["state"] == "succeeded"
    local = client.create_run_from_pipeline_package(notebook, backend="local")
    client.wait_for_run_completion(local.run_id, timeout=60)
    listed = client.list_runs()
    assert listed.unavailable == {}
    assert [(r["id"], r["backend"]) for r in listed] == [
        (local.run_id, "local"),
        (started.run_id, "kubernetes"),
    ]
    assert listed[1]["source"] == str(notebook.resolve())

    # Every request went to a route of KFP's swagger (or main.go's log route); in
    # multi-user mode every one but healthz carried the projected token.
    assert all(op for _, _, op, _, _ in kfp.stub.requests)
    assert kfp.stub.operation_ids() <= SWAGGER_OPS
    if kfp.multi_user:
        assert all(had for _, path, _, had, _ in kfp.stub.requests if "healthz" not in path)


def test_one_experiment_per_notebook_found_or_created(kfp: Kfp, notebook: Path) -> None:
    def creations() -> int:
        return sum(
            op == "ExperimentService_CreateExperiment" for _, _, op, _, _ in kfp.stub.requests
        )

    first = kfp.client().create_run_from_pipeline_package(notebook)
    second = kfp.client().create_run_from_pipeline_package(notebook)  # another process
    runs = kfp.stub.runs
    assert runs[first.run_id].experiment_id == runs[second.run_id].experiment_id
    assert creations() == 1  # the second found it by name (a display_name filter)

    # One experiment for every run instead, e.g. kfp.Client's "Default".
    third = kfp.client(kfp_experiment="Default").create_run_from_pipeline_package(notebook)
    default = kfp.stub.experiments[runs[third.run_id].experiment_id]
    assert default.display_name == "Default"
    # Single-user KFP made "Default" at start; a multi-user profile gets its own.
    assert creations() == (2 if kfp.multi_user else 1)


def test_multi_user_needs_the_profile_namespace(multi_user_kfp: Kfp, notebook: Path) -> None:
    kubeflow.NAMESPACE_FILE.unlink()  # not in a pod
    with pytest.raises(KubelabError, match=r"multi-user.*kfp_namespace") as raised:
        multi_user_kfp.client().create_run_from_pipeline_package(notebook)
    assert raised.value.details == {"field": "kfp_namespace"}
    assert [op for _, _, op, _, _ in multi_user_kfp.stub.requests] == ["HealthzService_GetHealthz"]
    # ... or a setting names it.
    started = multi_user_kfp.client(kfp_namespace=NAMESPACE).create_run_from_pipeline_package(
        notebook
    )
    assert multi_user_kfp.stub.runs[started.run_id].namespace == NAMESPACE


def test_multi_user_authenticates_with_the_projected_token(
    multi_user_kfp: Kfp, notebook: Path
) -> None:
    kfp = multi_user_kfp
    client = kfp.client()
    started = client.create_run_from_pipeline_package(notebook)

    # The kubelet rotates the token: the next request reads the new one.
    kfp.rotate_token("projected-token-2")
    assert client.get_run(started.run_id)["id"] == started.run_id

    # A token for another audience, or none, is refused by KFP's TokenReview.
    kfp.stub.add_token("kube-api-token", USER, audience="https://kubernetes.default.svc")
    kfp.token_file.write_text("kube-api-token")
    with pytest.raises(ForbiddenError, match=r"answered 401 .*User identity is empty"):
        client.get_run(started.run_id)
    kfp.token_file.unlink()
    with pytest.raises(ForbiddenError, match="answered 401"):
        client.list_runs(backend="kubernetes")

    # A namespace the user has no role in is refused with KFP's message.
    kfp.token_file.write_text("projected-token-2")
    with pytest.raises(ForbiddenError, match=r"answered 403 .*not authorized"):
        kfp.client(kfp_namespace="team-b").list_runs(backend="kubernetes")

    # An explicit token file that does not exist is a setting to fix, not a 401.
    with pytest.raises(KubelabError, match="cannot read the Kubeflow Pipelines token file"):
        kfp.client(kfp_token_file=str(kfp.token_file) + ".missing").get_run(started.run_id)


def test_cancel_terminates_and_a_terminated_run_ends_cancelled(kfp: Kfp, notebook: Path) -> None:
    client = kfp.client()
    started = client.create_run_from_pipeline_package(notebook)
    tasks = task_names(notebook)
    kfp.stub.simulate_argo(
        started.run_id, {tasks["load"]: "Succeeded", tasks["features"]: "Running"}
    )

    run = client.cancel(started.run_id)
    assert ("POST", f"/apis/v2beta1/runs/{started.run_id}:terminate") in [
        (m, p) for m, p, _, _, _ in kfp.stub.requests
    ]
    assert kfp.stub.runs[started.run_id].state == "CANCELING" and run["state"] == "running"
    # Argo stops the workflow: KFP reports FAILED, kubelab shows what happened.
    kfp.stub.simulate_argo(
        started.run_id, {tasks["load"]: "Succeeded", tasks["features"]: "Running"}, phase="Failed"
    )
    run = client.get_run(started.run_id)
    assert run["state"] == "cancelled" and run["error"] == "cancelled"
    steps = by_step(run, notebook)
    assert [steps[s]["state"] for s in STEPS] == [
        "succeeded",
        "cancelled",
        "cancelled",
        "cancelled",
    ]
    terminations = sum(p.endswith(":terminate") for _, p, _, _, _ in kfp.stub.requests)
    with pytest.raises(ConflictError, match="already finished"):
        client.cancel(started.run_id)
    assert sum(p.endswith(":terminate") for _, p, _, _, _ in kfp.stub.requests) == terminations

    # A run terminated from KFP's UI is known as cancelled by its workflow.
    namespace = NAMESPACE if kfp.multi_user else ""
    other = kfp.stub.create_run_elsewhere(compile_notebook(notebook).pipeline_spec(), namespace)
    kfp.stub.simulate_argo(other.run_id, {tasks["load"]: "Running"})
    kfp.stub._terminate(other)
    kfp.stub.simulate_argo(other.run_id, {tasks["load"]: "Running"}, phase="Failed")
    assert client.get_run(other.run_id, backend="kubernetes")["state"] == "cancelled"


def test_a_failed_step_says_why(kfp: Kfp, notebook: Path) -> None:
    client = kfp.client()
    started = client.create_run_from_pipeline_package(notebook)
    tasks = task_names(notebook)
    kfp.stub.simulate_argo(started.run_id, {tasks["load"]: "Failed"}, phase="Failed")
    run = client.get_run(started.run_id)
    steps = by_step(run, notebook)
    assert run["state"] == "failed"
    assert steps["load"]["state"] == "failed" and steps["load"]["error"] == "Error (exit code 1)"
    assert run["error"] == f"step {tasks['load']} failed: Error (exit code 1)"
    assert steps["train"]["state"] == "skipped" and "did not run" in steps["train"]["error"]


def test_ids_are_validated_and_redirects_are_never_followed(kfp: Kfp) -> None:
    client = kfp.client()
    before = len(kfp.stub.requests)
    with pytest.raises(KubelabError, match="is not a Kubeflow Pipelines run id"):
        client.get_run("../experiments?filter=x", backend="kubernetes")
    with pytest.raises(KubelabError, match="is not a Kubeflow Pipelines run id"):
        client.cancel("..%2Fexperiments", backend="kubernetes")
    assert len(kfp.stub.requests) == before  # nothing was sent

    # Why: KFP's router decodes %2F and redirects ".." to another endpoint, where a
    # client that follows redirects takes its token along (urllib does, by default).
    crafted = urllib.request.Request(
        f"{kfp.stub.url}/apis/v2beta1/runs/..%2Fexperiments%3Fnamespace%3D{NAMESPACE}"
    )
    if kfp.multi_user:
        crafted.add_header("Authorization", f"Bearer {kfp.token_file.read_text()}")
    with urllib.request.urlopen(crafted, timeout=10) as followed:
        assert followed.status == 200
    assert kfp.stub.requests[-1][2:4] == ("ExperimentService_ListExperiments", kfp.multi_user)
    # ... which kubelab never follows, not even for a path that slipped through.
    backend = client.run_backend()
    with pytest.raises(KfpUnavailableError, match=r"redirected GET /apis/v2beta1/runs/\.\.%2Fx"):
        backend.http.request("GET", "v2beta1/runs/..%2Fx")
    assert kfp.stub.requests[-1][1] == "/apis/v2beta1/runs/..%2Fx"


def test_a_gateway_login_is_a_clear_error(kfp: Kfp, notebook: Path) -> None:
    kfp.stub.gateway = "login_redirect"
    with pytest.raises(
        KfpUnavailableError, match=r"redirected GET /apis/v2beta1/healthz to http.*/dex/auth"
    ) as raised:
        kfp.client().create_run_from_pipeline_package(notebook)
    assert raised.value.status_code == 502
    assert not any("/dex/" in path for _, path, _, _, _ in kfp.stub.requests)

    kfp.stub.gateway = "login_page"
    with pytest.raises(
        KfpUnavailableError,
        match=f"{kfp.stub.url} answered GET /apis/v2beta1/healthz with text/html",
    ):
        kfp.client().create_run_from_pipeline_package(notebook)


def test_the_stub_holds_kfp_to_its_contract(kfp: Kfp, notebook: Path) -> None:
    """The checks that make this a contract test, shown failing on purpose."""
    stub = kfp.stub
    token = kfp.token_file.read_text() if kfp.multi_user else None
    ir = compile_notebook(notebook).pipeline_spec()
    experiment = kfp.client().run_backend().experiment_id("contract")
    run = {"display_name": "r", "pipeline_spec": ir, "experiment_id": experiment}

    # A field the proto does not have is refused (protojson, DiscardUnknown=false)...
    status, answer = post(f"{stub.url}/apis/v2beta1/runs", run | {"enable_caching": False}, token)
    assert (status, answer["code"]) == (400, 3) and 'unknown field "enable_caching"' in answer[
        "message"
    ]
    # ... proto names and their lowerCamel JSON names are both taken...
    camel = {"displayName": "r", "pipelineSpec": ir, "experimentId": experiment}
    assert post(f"{stub.url}/apis/v2beta1/runs", camel, token)[0] == 200
    # ... and the IR goes through the real protobuf.
    bad_ir = ir | {"pipelineInfo": {"name": "r", "owner": "me"}}
    status, answer = post(f"{stub.url}/apis/v2beta1/runs", run | {"pipeline_spec": bad_ir}, token)
    assert status == 400 and "no pipeline spec is provided" in answer["message"]

    # KFP v2beta1 has :terminate, not :cancel (the gateway answers 501).
    run_id = next(iter(stub.runs))
    assert post(f"{stub.url}/apis/v2beta1/runs/{run_id}:cancel", {}, token)[0] == 501
    assert post(f"{stub.url}/apis/v2beta1/runs/{run_id}:terminate", {}, token)[0] == 200

    status, answer = post(
        f"{stub.url}/apis/v2beta1/runs", {"display_name": "r", "pipeline_spec": ir}, token
    )
    if kfp.multi_user:
        assert (
            status == 400
            and "Experiment id can not be empty in multi-user mode" in answer["message"]
        )
    else:
        assert status == 200 and stub.experiments[answer["experiment_id"]].display_name == "Default"


def test_runs_are_listed_page_by_page_in_the_namespace(
    kfp: Kfp, notebook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ir = compile_notebook(notebook).pipeline_spec()
    namespace = NAMESPACE if kfp.multi_user else ""
    others = []
    for index in range(5):
        others.append(kfp.stub.create_run_elsewhere(ir, namespace))
        others[-1].created_at += index  # distinct creation times, newest last
    if kfp.multi_user:
        kfp.stub.create_run_elsewhere(ir, "team-b")  # not ours to see
    archived = kfp.stub.create_run_elsewhere(ir, namespace)
    archived.storage_state, archived.created_at = "ARCHIVED", time.time() + 100
    monkeypatch.setattr(kubeflow, "PAGE_SIZE_MAX", 2)

    client = kfp.client()
    newest = [r.run_id for r in reversed(others)]
    assert [r["id"] for r in client.list_runs(4, backend="kubernetes")] == newest[:4]
    listed = client.list_runs(100, backend="kubernetes")
    assert [r["id"] for r in listed] == newest  # the namespace's, archived left out
    assert all(r["source"] is None and r["backend"] == "kubernetes" for r in listed)
    tokens = [
        p
        for _, p, op, _, _ in kfp.stub.requests
        if op == "RunService_ListRuns" and "page_token=" in p
    ]
    assert len(tokens) >= 3  # followed next_page_token (2 runs a page)


def test_step_logs_come_from_kfp_or_link_to_its_ui(kfp: Kfp, notebook: Path) -> None:
    client = kfp.client(kfp_ui_url="https://kubeflow.example.com/pipeline/")
    started = client.create_run_from_pipeline_package(notebook)
    tasks = task_names(notebook)
    kfp.stub.simulate_argo(
        started.run_id, {tasks["load"]: "Succeeded", tasks["features"]: "Cached"}
    )
    load = by_step(client.get_run(started.run_id), notebook)["load"]
    kfp.stub.pod_logs[load["pods"][0]] = "loading 8 rows\n"

    # By task name or notebook step name, followed by byte offset as local logs are.
    assert client.logs(started.run_id, "load")["text"] == "loading 8 rows\n"
    assert client.logs(started.run_id, tasks["load"], offset=8) == {
        "text": "8 rows\n",
        "offset": 15,
        "complete": True,
        "state": "succeeded",
    }
    assert client.logs(started.run_id, "features")["text"] == ""  # cached: nothing ran

    # The pod is gone (and no log archive): KFP cannot say, the UI can.
    del kfp.stub.pod_logs[load["pods"][0]]
    with pytest.raises(KfpUnavailableError) as raised:
        client.logs(started.run_id, "load")
    url = f"https://kubeflow.example.com/pipeline/#/runs/details/{started.run_id}"
    assert raised.value.details["url"] == url and url in raised.value.message
    assert "not found" in raised.value.message


def test_kubernetes_settings_and_caching_reach_kfp(kfp: Kfp, tmp_path: Path) -> None:
    source = tmp_path / "root" / "p.py"
    source.write_text(
        "from kubelab.pipelines import dsl\n"
        "from kubelab.pipelines.dsl import kubernetes\n\n"
        "@dsl.component\n"
        "def hello(name: str) -> str:\n"
        "    return name\n\n"
        "@dsl.pipeline(name='hello')\n"
        "def hello_pipeline(name: str = 'x'):\n"
        "    task = hello(name=name)\n"
        "    kubernetes.add_node_selector(task, 'pool', 'cpu')\n"
    )
    started = kfp.client().create_run_from_pipeline_package(source, enable_caching=False)
    spec = kfp.stub.runs[started.run_id].pipeline_spec
    ir, platform = parse_pipeline_spec(spec)  # the {pipeline_spec, platform_spec} form
    assert platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert ir["root"]["dag"]["tasks"]["hello"]["cachingOptions"] == {"enableCache": False}
    assert parse_ir(spec) is spec["pipeline_spec"]


def test_only_kfp_s_own_settings_are_accepted(kfp: Kfp, notebook: Path) -> None:
    with pytest.raises(KubelabError, match="parallelism: options of the local engine"):
        kfp.client().create_run_from_pipeline_package(notebook, parallelism=2)
    with pytest.raises(KubelabError, match="must be an http"):
        Client("kubernetes", kfp_endpoint="ml-pipeline:8888").list_runs(backend="kubernetes")
    assert isinstance(kfp.stub, KfpStub)


def test_the_cli_lists_shows_and_cancels_kfp_runs(
    kfp: Kfp, notebook: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubelab.client.cli.main import main

    monkeypatch.setenv("KUBELAB_KFP_ENDPOINT", kfp.stub.url)
    started = kfp.client().create_run_from_pipeline_package(notebook)
    tasks = task_names(notebook)
    kfp.stub.simulate_argo(started.run_id, {tasks["load"]: "Running"})

    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert started.run_id in out and "kubernetes" in out and "running" in out
    assert main(["runs", "show", started.run_id]) == 0
    out = capsys.readouterr().out
    assert f"run {started.run_id}  train  running  (kubernetes)" in out and "load" in out

    # The pod's log is not there: the CLI says where to read it.
    assert main(["runs", "logs", started.run_id, "load"]) == 2
    assert f"/pipeline/#/runs/details/{started.run_id}" in capsys.readouterr().err

    # Cancel: terminate, then Argo stops the workflow a moment later.
    def argo_stops_it() -> None:
        while not any(p.endswith(":terminate") for _, p, _, _, _ in kfp.stub.requests):
            time.sleep(0.05)
        kfp.stub.simulate_argo(started.run_id, {tasks["load"]: "Running"}, phase="Failed")

    argo = threading.Thread(target=argo_stops_it, daemon=True)
    argo.start()
    assert main(["runs", "cancel", started.run_id]) == 0
    argo.join(5)
    assert f"run {started.run_id} cancelled" in capsys.readouterr().out
