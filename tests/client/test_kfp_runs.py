"""KFP runs as kubelab run JSON (pure mapping): what the contract test's stub does not
produce — loops, retries, nested DAGs, pod-name formats, unset and odd timestamps."""

from __future__ import annotations

from kubelab.client.backends import kfp_runs

IR = {
    "pipelineInfo": {"name": "p"},
    "root": {
        "dag": {
            "tasks": {
                "prep": {"componentRef": {"name": "comp-prep"}, "taskInfo": {"name": "Prepare"}},
                "for-loop-2": {"componentRef": {"name": "comp-for-loop-2"}},
            }
        }
    },
    "components": {
        "comp-prep": {"executorLabel": "exec-prep"},
        "comp-train": {"executorLabel": "exec-train"},
        "comp-for-loop-2": {"dag": {"tasks": {"train": {"componentRef": {"name": "comp-train"}}}}},
    },
}


def node(node_id: str, display: str, template: str, phase: str, children=(), kind="DAG", **extra):
    return {
        "id": node_id,
        "name": f"p-abc.{display}.{node_id}",
        "displayName": display,
        "templateName": template,
        "type": kind,
        "phase": phase,
        "children": list(children),
        **extra,
    }


def workflow(*nodes: dict, **meta) -> dict:
    return {
        "metadata": {"name": "p-abc", **meta},
        "spec": {},
        "status": {"nodes": {n["id"]: n for n in nodes}},
    }


def detail(
    display: str, state: str, start: str = "0001-01-01T00:00:00Z", end: str = "0001-01-01T00:00:00Z"
):
    return {"display_name": display, "state": state, "start_time": start, "end_time": end}


def test_the_user_steps_are_the_container_tasks_of_every_dag() -> None:
    assert kfp_runs.user_tasks(IR) == {"prep": "Prepare", "train": "train"}


def test_unset_and_invalid_times_are_none() -> None:
    for unset in ("1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "", None, "yesterday"):
        assert kfp_runs.timestamp(unset) is None
    assert kfp_runs.timestamp("2026-11-29T10:00:05Z") == "2026-11-29T10:00:05.000Z"
    assert kfp_runs.timestamp("2026-11-29T10:00:05.25+01:00") == "2026-11-29T09:00:05.250Z"


def test_a_loop_step_shows_its_iterations_together() -> None:
    run = {
        "run_id": "r",
        "state": "RUNNING",
        "pipeline_spec": IR,
        "created_at": "2026-11-29T10:00:00Z",
        "finished_at": "1970-01-01T00:00:00Z",
        "run_details": {
            "task_details": [
                detail("root", "RUNNING", "2026-11-29T10:00:00Z"),  # not a user step
                detail("prep", "SUCCEEDED", "2026-11-29T10:00:01Z", "2026-11-29T10:00:03Z"),
                detail("train", "SUCCEEDED", "2026-11-29T10:00:04Z", "2026-11-29T10:00:06Z"),
                detail("train", "RUNNING", "2026-11-29T10:00:05Z"),
            ]
        },
    }
    result = kfp_runs.run_json(run)
    assert result["state"] == "running" and result["finished_at"] is None
    prep, train = result["steps"]
    assert (prep["name"], prep["display_name"], prep["duration_s"]) == ("prep", "Prepare", 2.0)
    assert train["state"] == "running" and train["started_at"] == "2026-11-29T10:00:04.000Z"
    assert train["finished_at"] is None and train["duration_s"] is None


def test_retries_count_attempts_and_the_pod_names_follow_argo() -> None:
    wf = workflow(
        node("p-abc-1", "prep", "system-container-executor", "Succeeded", ["p-abc-2"]),
        node("p-abc-2", "executor", "", "Succeeded", ["p-abc-3", "p-abc-4"], kind="Retry"),
        node(
            "p-abc-3",
            "executor(0)",
            "system-container-impl",
            "Failed",
            kind="Pod",
            startedAt="2026-11-29T10:00:01Z",
            message="OOMKilled",
        ),
        node(
            "p-abc-4",
            "executor(1)",
            "system-container-impl",
            "Succeeded",
            kind="Pod",
            startedAt="2026-11-29T10:00:09Z",
        ),
    )
    (prep,) = kfp_runs.executions(wf)["prep"]
    assert prep["attempts"] == 2 and not prep["cached"]
    assert prep["pods"] == ["p-abc-system-container-impl-3", "p-abc-system-container-impl-4"]
    v1 = workflow(
        *wf["status"]["nodes"].values(), annotations={"workflows.argoproj.io/pod-name-format": "v1"}
    )
    assert kfp_runs.executions(v1)["prep"][0]["pods"] == ["p-abc-3", "p-abc-4"]


def test_a_cached_step_and_a_condition_skipped_step_differ() -> None:
    wf = workflow(
        node("p-abc-1", "prep", "system-container-executor", "Succeeded", ["p-abc-2"]),
        node("p-abc-2", "executor", "system-container-impl", "Skipped", kind="Skipped"),
        node("p-abc-5", "train", "system-container-executor", "Skipped", kind="Skipped"),
    )
    run = {
        "run_id": "r",
        "state": "SUCCEEDED",
        "pipeline_spec": IR,
        "finished_at": "2026-11-29T10:00:09Z",
        "run_details": {
            "task_details": [
                detail("prep", "SUCCEEDED"),
                detail("executor", "SKIPPED"),
                detail("train", "SKIPPED"),
            ]
        },
    }
    assert kfp_runs.needs_workflow(run)
    prep, train = kfp_runs.run_json(run, workflow=wf)["steps"]
    assert (prep["state"], prep["cached"], prep["attempts"]) == ("succeeded", True, 0)
    assert (train["state"], train["cached"]) == ("skipped", False)
    # Without the workflow (v1beta1 unreadable) nothing is claimed as cached.
    assert not kfp_runs.run_json(run)["steps"][0]["cached"]


def test_a_run_in_the_platform_form_and_caching_off() -> None:
    run = {
        "run_id": "r",
        "state": "PENDING",
        "pipeline_spec": {"pipeline_spec": IR, "platform_spec": {}},
    }
    assert [s["name"] for s in kfp_runs.run_json(run)["steps"]] == ["prep", "train"]
    off = kfp_runs.disable_caching(IR)
    assert off["root"]["dag"]["tasks"]["prep"]["cachingOptions"] == {"enableCache": False}
    assert "cachingOptions" not in IR["root"]["dag"]["tasks"]["prep"]  # a copy
    assert off["components"] == IR["components"]  # nested tasks keep their settings, as kfp
