"""The engine on hand-written IR with shell-command executors (real processes)."""

from __future__ import annotations

import io
import json
import os
import textwrap
import threading
import time
from pathlib import Path

import pytest
from local_ir_helpers import (
    PipelineBuilder,
    artifact_from,
    constant,
    from_parent,
    from_task,
    shell_component,
)

from kubelab.client.store import RunStore
from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.local.engine import cancel_run, run_pipeline, start_run, wait_run

INC = shell_component(
    'echo "inc $IN_x"; echo $((IN_x + 1)) > "$OUT_y"',
    inputs={"x": "NUMBER_INTEGER"},
    outputs={"y": "NUMBER_INTEGER"},
)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs.db")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "outputs"


def chain(n: int) -> dict:
    p = PipelineBuilder("chain")
    p.param("x", "NUMBER_INTEGER", 0)
    comp = p.component("inc", INC)
    for i in range(n):
        source = from_parent("x") if i == 0 else from_task(f"inc-{i - 1}", "y")
        p.task(
            f"inc-{i}",
            comp,
            after=[f"inc-{i - 1}"] if i else None,
            inputs={"parameters": {"x": source}},
        )
    p.output("Output", f"inc-{n - 1}", "y", "NUMBER_INTEGER")
    return p.spec


def steps_by_name(run: dict) -> dict[str, dict]:
    return {s["name"]: s for s in run["steps"]}


def test_chain_passes_outputs_and_records_steps(store: RunStore, root: Path) -> None:
    result = run_pipeline(
        chain(3),
        {"x": 5},
        store=store,
        pipeline_root=root,
        task_metadata={"inc-0": {"cells": [1, 2]}},
        source="p.ipynb",
    )
    assert result.state == "succeeded", result.error
    assert result.outputs == {"Output": 8}
    run = store.get_run(result.run_id)
    assert run["parameters"] == {"x": 5}
    assert run["source"] == "p.ipynb"
    steps = steps_by_name(run)
    assert [s["state"] for s in run["steps"]] == ["succeeded"] * 3
    assert steps["inc-0"]["cells"] == [1, 2]
    assert steps["inc-2"]["outputs"] == {"y": 8}
    assert steps["inc-0"]["attempts"] == 1
    log = Path(store.task_info(result.run_id, "inc-1")["log_path"]).read_text()
    assert "inc 6" in log
    assert "image 'alpine:3' is ignored locally" in log
    assert (root / result.run_id / "inc-1" / "y").read_text().strip() == "7"


def test_second_run_is_cached_and_changed_input_is_not(store: RunStore, root: Path) -> None:
    first = run_pipeline(chain(3), {"x": 1}, store=store, pipeline_root=root)
    again = run_pipeline(chain(3), {"x": 1}, store=store, pipeline_root=root)
    assert again.outputs == first.outputs == {"Output": 4}
    assert all(s["cached"] for s in again.run()["steps"])
    other = run_pipeline(chain(3), {"x": 2}, store=store, pipeline_root=root)
    assert other.outputs == {"Output": 5}
    # Content-addressed: the steps now see inputs 2, 3, 4; the first run (inputs 1, 2, 3)
    # already computed `inc` of 2 and 3, so only the last step executes.
    assert [s["cached"] for s in other.run()["steps"]] == [True, True, False]
    no_cache = run_pipeline(
        chain(3), {"x": 1}, store=store, pipeline_root=root, enable_caching=False
    )
    assert not any(s["cached"] for s in no_cache.run()["steps"])


def test_cache_follows_artifact_content_not_path(
    store: RunStore, root: Path, tmp_path: Path
) -> None:
    p = PipelineBuilder("artifacts")
    p.param("path", "STRING")
    make = p.component(
        "make",
        shell_component(
            'cp "$IN_src" "$ART_OUT_data"',
            inputs={"src": "STRING"},
            artifacts_out={"data": "system.Dataset"},
        ),
    )
    count = p.component(
        "count",
        shell_component(
            'wc -c < "$ART_IN_data" | tr -d " " > "$OUT_n"',
            artifacts_in={"data": "system.Dataset"},
            outputs={"n": "NUMBER_INTEGER"},
        ),
    )
    p.task("make", make, inputs={"parameters": {"src": from_parent("path")}})
    p.task(
        "count",
        count,
        after=["make"],
        inputs={"artifacts": {"data": artifact_from("make", "data")}},
    )
    p.output("n", "count", "n", "NUMBER_INTEGER")
    src = tmp_path / "src.txt"
    src.write_text("abc")
    first = run_pipeline(p.spec, {"path": str(src)}, store=store, pipeline_root=root)
    assert first.outputs == {"n": 3}
    # `make` re-runs into a new directory with the same bytes: `count` is still cached.
    same = run_pipeline(
        p.spec, {"path": str(src)}, store=store, pipeline_root=root, force_rerun={"make"}
    )
    steps = steps_by_name(same.run())
    assert not steps["make"]["cached"] and steps["count"]["cached"]
    assert (
        steps["make"]["outputs"]["data"]["uri"]
        != steps_by_name(first.run())["make"]["outputs"]["data"]["uri"]
    )
    # New bytes under the same parameter: only the artifact digest changed, `count` re-runs.
    src.write_text("abcdef")
    changed = run_pipeline(
        p.spec, {"path": str(src)}, store=store, pipeline_root=root, force_rerun={"make"}
    )
    assert not steps_by_name(changed.run())["count"]["cached"]
    assert changed.outputs == {"n": 6}


def test_failure_skips_downstream_and_fails_run(store: RunStore, root: Path) -> None:
    p = PipelineBuilder("fails")
    bad = p.component("bad", shell_component('echo "boom" >&2; exit 3'))
    ok = p.component("ok", shell_component("echo fine"))
    p.task("bad", bad)
    p.task("after-bad", ok, after=["bad"])
    p.task("independent", ok)
    result = run_pipeline(p.spec, store=store, pipeline_root=root)
    assert result.state == "failed"
    assert "bad" in result.error and "exit code 3" in result.error
    steps = steps_by_name(result.run())
    assert steps["bad"]["state"] == "failed"
    assert steps["after-bad"]["state"] == "skipped"
    assert steps["independent"]["state"] == "succeeded"
    assert "boom" in Path(store.task_info(result.run_id, "bad")["log_path"]).read_text()


def test_independent_tasks_run_in_parallel(store: RunStore, root: Path) -> None:
    p = PipelineBuilder("fan")
    sleep = p.component("sleep", shell_component("sleep 0.5"))
    for i in range(4):
        p.task(f"s{i}", sleep, cachingOptions={"enableCache": False})
    t0 = time.monotonic()
    result = run_pipeline(p.spec, store=store, pipeline_root=root, parallelism=4)
    elapsed = time.monotonic() - t0
    assert result.state == "succeeded"
    assert elapsed < 1.5, f"4 x 0.5 s with parallelism 4 took {elapsed:.2f}s"
    t0 = time.monotonic()
    run_pipeline(p.spec, store=store, pipeline_root=root, parallelism=1)
    assert time.monotonic() - t0 >= 2.0  # parallelism 1 really serialises


def test_retry_until_success(store: RunStore, root: Path, tmp_path: Path) -> None:
    """Retries, and a log that keeps every attempt (following it shows them all)."""
    from kubelab.pipelines.local.progress import LogStreamer

    counter = tmp_path / "count"
    p = PipelineBuilder("retry")
    flaky = p.component(
        "flaky",
        shell_component(
            f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; "
            'echo "output of attempt $n"; [ "$n" -ge 3 ]'
        ),
    )
    p.task("flaky", flaky, retryPolicy={"maxRetryCount": 3, "backoffDuration": "0s"})
    streamed = io.StringIO()
    result = run_pipeline(p.spec, store=store, pipeline_root=root, on_event=LogStreamer(streamed))
    assert result.state == "succeeded"
    assert steps_by_name(result.run())["flaky"]["attempts"] == 3
    log = Path(store.task_info(result.run_id, "flaky")["log_path"])
    text = log.read_text()
    assert text.index("output of attempt 1") < text.index("output of attempt 3")
    assert (log.parent / "attempt-1.log").read_text().count("output of attempt") == 1
    assert "output of attempt 2" in (log.parent / "attempt-2.log").read_text()
    assert [streamed.getvalue().count(f"output of attempt {n}") for n in (1, 2, 3)] == [1, 1, 1]
    counter.write_text("-10")
    p.spec["root"]["dag"]["tasks"]["flaky"]["retryPolicy"]["maxRetryCount"] = 1
    failed = run_pipeline(p.spec, store=store, pipeline_root=root, enable_caching=False)
    assert failed.state == "failed"
    assert steps_by_name(failed.run())["flaky"]["attempts"] == 2


def test_timeout_kills_task(store: RunStore, root: Path) -> None:
    p = PipelineBuilder("slow")
    p.task("slow", p.component("slow", shell_component("sleep 30")))
    t0 = time.monotonic()
    result = run_pipeline(p.spec, store=store, pipeline_root=root, task_timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert result.state == "failed"
    assert "timed out" in result.error


def test_cancel_kills_running_and_cancels_pending(store: RunStore, root: Path) -> None:
    p = PipelineBuilder("cancel")
    slow = p.component("slow", shell_component("sleep 30"))
    p.task("first", slow)
    p.task("second", slow, after=["first"])
    run_id = start_run(p.spec, store=store, pipeline_root=root)
    deadline = time.monotonic() + 10
    while store.get_run(run_id)["steps"][0]["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    t0 = time.monotonic()
    cancel_run(run_id)
    result = wait_run(run_id, timeout=10)
    assert result is not None and result.state == "cancelled"
    assert time.monotonic() - t0 < 5
    states = {s["name"]: s["state"] for s in store.get_run(run_id)["steps"]}
    assert states == {"first": "cancelled", "second": "cancelled"}


def test_cancel_through_store_flag(store: RunStore, root: Path) -> None:
    """Another process (the CLI) only sets a flag; the engine polls it."""
    p = PipelineBuilder("cancel-flag")
    p.task("slow", p.component("slow", shell_component("sleep 30")))
    run_id = start_run(p.spec, store=store, pipeline_root=root)
    RunStore(store.path).request_cancel(run_id)
    result = wait_run(run_id, timeout=10)
    assert result is not None and result.state == "cancelled"


def test_conditions_skip_and_downstream_of_skipped_condition_runs(
    store: RunStore, root: Path
) -> None:
    p = PipelineBuilder("cond")
    p.param("n", "NUMBER_INTEGER", 7)
    echo = p.component(
        "echo",
        shell_component('echo "$IN_v" > "$OUT_o"', inputs={"v": "STRING"}, outputs={"o": "STRING"}),
    )
    branch_dag: dict = {"tasks": {}}
    p.task("say", echo, dag=branch_dag, inputs={"parameters": {"v": constant("big")}})
    cond = p.dag_component(
        "condition-1",
        branch_dag,
        inputDefinitions={
            "parameters": {"pipelinechannel--n": {"parameterType": "NUMBER_INTEGER"}}
        },
    )
    p.task(
        "condition-1",
        cond,
        inputs={"parameters": {"pipelinechannel--n": from_parent("n")}},
        triggerPolicy={"condition": "int(inputs.parameter_values['pipelinechannel--n']) > 5"},
    )
    p.task("last", echo, after=["condition-1"], inputs={"parameters": {"v": constant("end")}})
    big = run_pipeline(p.spec, {"n": 7}, store=store, pipeline_root=root)
    assert big.state == "succeeded"
    assert steps_by_name(big.run())["condition-1/say"]["state"] == "succeeded"
    small = run_pipeline(p.spec, {"n": 2}, store=store, pipeline_root=root)
    assert small.state == "succeeded", small.error
    steps = steps_by_name(small.run())
    assert steps["condition-1"]["state"] == "skipped"
    assert steps["condition-1/say"]["state"] == "skipped"  # listed, so the UI shows it
    assert steps["last"]["state"] == "succeeded"


def test_parallel_for_collects_outputs_and_nested_dag_returns(store: RunStore, root: Path) -> None:
    p = PipelineBuilder("loop")
    p.param("items", "LIST", [1, 2, 3])
    inc = p.component("inc", INC)
    total = p.component(
        "total",
        shell_component(
            """python3 -c "import json,sys; print(sum(json.loads(sys.argv[1])))" "$IN_xs" > "$OUT_s" """,
            inputs={"xs": "LIST"},
            outputs={"s": "NUMBER_INTEGER"},
        ),
    )
    body: dict = {
        "tasks": {},
        "outputs": {
            "parameters": {
                "pipelinechannel--inc-y": {
                    "valueFromParameter": {"producerSubtask": "inc", "outputParameterKey": "y"}
                }
            }
        },
    }
    p.task(
        "inc",
        inc,
        dag=body,
        inputs={"parameters": {"x": from_parent("pipelinechannel--items-loop-item")}},
    )
    loop = p.dag_component(
        "for-loop-1",
        body,
        inputDefinitions={
            "parameters": {
                "pipelinechannel--items": {"parameterType": "LIST"},
                "pipelinechannel--items-loop-item": {"parameterType": "NUMBER_INTEGER"},
            }
        },
        outputDefinitions={"parameters": {"pipelinechannel--inc-y": {"parameterType": "LIST"}}},
    )
    p.task(
        "for-loop-1",
        loop,
        inputs={"parameters": {"pipelinechannel--items": from_parent("items")}},
        parameterIterator={
            "itemInput": "pipelinechannel--items-loop-item",
            "items": {"inputParameter": "pipelinechannel--items"},
        },
        iteratorPolicy={"parallelismLimit": 2},
    )
    p.task(
        "total",
        total,
        after=["for-loop-1"],
        inputs={"parameters": {"xs": from_task("for-loop-1", "pipelinechannel--inc-y")}},
    )
    p.output("Output", "total", "s", "NUMBER_INTEGER")
    result = run_pipeline(p.spec, {"items": [10, 20, 30, 40]}, store=store, pipeline_root=root)
    assert result.state == "succeeded", result.error
    assert result.outputs == {"Output": 104}
    names = [s["name"] for s in result.run()["steps"]]
    assert {"for-loop-1[0]/inc", "for-loop-1[3]/inc", "total"} <= set(names)
    raw = json.loads(json.dumps(p.spec))
    raw["root"]["dag"]["tasks"]["for-loop-1"]["parameterIterator"]["items"] = {"raw": "[5, 6]"}
    assert run_pipeline(raw, store=store, pipeline_root=root).outputs == {"Output": 13}


def test_exit_handler_runs_after_failure_with_final_status(store: RunStore, root: Path) -> None:
    p = PipelineBuilder("exit")
    bad = p.component("bad", shell_component("exit 1"))
    report = p.component(
        "report",
        shell_component(
            'echo "$IN_status" > "$OUT_o"',
            inputs={"status": "TASK_FINAL_STATUS"},
            outputs={"o": "STRING"},
        ),
    )
    body: dict = {"tasks": {}}
    p.task("bad", bad, dag=body)
    handler = p.dag_component("exit-handler-1", body)
    p.task("exit-handler-1", handler)
    p.task(
        "report",
        report,
        after=["exit-handler-1"],
        inputs={"parameters": {"status": {"taskFinalStatus": {"producerTask": "exit-handler-1"}}}},
        triggerPolicy={"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"},
    )
    result = run_pipeline(p.spec, store=store, pipeline_root=root)
    assert result.state == "failed"
    steps = steps_by_name(result.run())
    assert steps["report"]["state"] == "succeeded"
    status = json.loads(steps["report"]["outputs"]["o"])
    assert status["state"] == "FAILED"
    assert status["pipelineTaskName"] == "exit-handler-1"
    assert status["pipelineJobResourceName"] == result.run_id


def test_env_and_metrics_and_importer(store: RunStore, root: Path, tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("a,b\n")
    p = PipelineBuilder("misc")
    env_comp = p.component(
        "env",
        shell_component(
            'printf "%s" "$GREETING" > "$OUT_o"', outputs={"o": "STRING"}, env={"GREETING": "hello"}
        ),
    )
    # Writes KFP's ExecutorOutput to {{$.outputs.output_file}}, as a container component may.
    metrics = p.component("metrics", shell_component("true", artifacts_out={"m": "system.Metrics"}))
    p.spec["deploymentSpec"]["executors"]["exec-metrics"]["container"].update(
        command=[
            "sh",
            "-c",
            'echo "$1" > "$0"',
            "{{$.outputs.output_file}}",
            json.dumps(
                {"artifacts": {"m": {"artifacts": [{"metadata": {"accuracy": 0.9, "loss": 2}}]}}}
            ),
        ],
        args=[],
    )
    p.spec["components"]["comp-importer"] = {
        "executorLabel": "exec-importer",
        "inputDefinitions": {"parameters": {"uri": {"parameterType": "STRING"}}},
        "outputDefinitions": {
            "artifacts": {"artifact": {"artifactType": {"schemaTitle": "system.Dataset"}}}
        },
    }
    p.spec["deploymentSpec"]["executors"]["exec-importer"] = {
        "importer": {
            "artifactUri": {"runtimeParameter": "uri"},
            "typeSchema": {"schemaTitle": "system.Dataset"},
        }
    }
    p.task("env", env_comp)
    p.task("metrics", metrics)
    p.task("importer", "comp-importer", inputs={"parameters": {"uri": constant(str(data))}})
    result = run_pipeline(p.spec, store=store, pipeline_root=root)
    assert result.state == "succeeded", result.error
    run = result.run()
    steps = steps_by_name(run)
    assert steps["env"]["outputs"] == {"o": "hello"}
    assert run["metrics"] == {"accuracy": 0.9, "loss": 2}
    assert steps["importer"]["outputs"]["artifact"]["uri"] == str(data)


def test_gpu_request_without_gpus_runs_on_the_cpu_with_a_warning(
    store: RunStore, root: Path, monkeypatch
) -> None:
    """As kfp.local: a GPU step runs on a laptop, and says so; strict resources refuse."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    p = PipelineBuilder("gpu")
    p.task(
        "train",
        p.component(
            "train",
            shell_component(
                'echo "devices=[$CUDA_VISIBLE_DEVICES]"',
                resources={"accelerator": {"resourceType": "nvidia.com/gpu", "resourceCount": "2"}},
            ),
        ),
        cachingOptions={"enableCache": False},
    )
    events: list[dict] = []
    result = run_pipeline(p.spec, store=store, pipeline_root=root, on_event=events.append)
    assert result.state == "succeeded", result.error
    run = result.run()
    [warning] = run["warnings"]
    assert "asks for 2 nvidia.com/gpu but this machine has 0: it runs on the CPU" in warning
    assert run["steps"][0]["warnings"] == [warning]
    assert any(e.get("warning") == warning for e in events)
    t0 = time.monotonic()
    strict = run_pipeline(p.spec, store=store, pipeline_root=root, strict_resources=True)
    assert time.monotonic() - t0 < 5
    assert strict.state == "failed"
    assert "requests 2 nvidia.com/gpu" in strict.error and "0 GPU" in strict.error


def test_argument_errors_name_the_parameter(store: RunStore, root: Path) -> None:
    with pytest.raises(KubelabError, match=r"unknown parameter 'y'.*valid parameters: x"):
        run_pipeline(chain(1), {"y": 1}, store=store, pipeline_root=root)
    p = PipelineBuilder("req")
    p.param("needed", "NUMBER_DOUBLE")
    with pytest.raises(KubelabError, match="missing required parameter 'needed'"):
        run_pipeline(p.spec, {}, store=store, pipeline_root=root)
    with pytest.raises(KubelabError, match="parameter 'x': expected int"):
        run_pipeline(chain(1), {"x": "abc"}, store=store, pipeline_root=root)


def test_log_is_readable_while_task_runs(store: RunStore, root: Path) -> None:
    p = PipelineBuilder("live-log")
    p.task("talk", p.component("talk", shell_component("echo early; sleep 2; echo late")))
    run_id = start_run(p.spec, store=store, pipeline_root=root)
    deadline = time.monotonic() + 10
    seen = ""
    while "early" not in seen:
        assert time.monotonic() < deadline, seen
        log = store.task_info(run_id, "talk").get("log_path")
        seen = Path(log).read_text() if log and Path(log).exists() else ""
        time.sleep(0.05)
    assert "late" not in seen
    assert store.get_run(run_id)["state"] == "running"
    result = wait_run(run_id, timeout=10)
    assert result is not None and result.state == "succeeded"


def test_events_reach_callback_from_threads(store: RunStore, root: Path) -> None:
    events: list[dict] = []
    lock = threading.Lock()

    def on_event(event: dict) -> None:
        with lock:
            events.append(event)

    run_pipeline(chain(2), store=store, pipeline_root=root, on_event=on_event)
    states = [(e.get("name"), e["state"]) for e in events]
    assert (None, "running") in states and (None, "succeeded") in states
    assert ("inc-1", "succeeded") in states
    assert states.index(("inc-0", "succeeded")) < states.index(("inc-1", "running"))


def test_cpu_limits_bound_the_scheduler(store: RunStore, root: Path) -> None:
    """Two tasks that each need every CPU run one after the other."""
    p = PipelineBuilder("cpu")
    cores = float(os.cpu_count() or 1)
    heavy = p.component("heavy", shell_component("sleep 0.5", resources={"cpuLimit": cores}))
    p.task("h1", heavy, cachingOptions={"enableCache": False})
    p.task("h2", heavy, cachingOptions={"enableCache": False})
    t0 = time.monotonic()
    assert run_pipeline(p.spec, store=store, pipeline_root=root, parallelism=2).succeeded
    assert time.monotonic() - t0 >= 1.0
    q = PipelineBuilder("cpu-light")
    light = q.component(
        "light", shell_component("sleep 0.5", resources={"resourceCpuLimit": "500m"})
    )
    q.task("l1", light, cachingOptions={"enableCache": False})
    q.task("l2", light, cachingOptions={"enableCache": False})
    t0 = time.monotonic()
    assert run_pipeline(q.spec, store=store, pipeline_root=root, parallelism=2).succeeded
    assert time.monotonic() - t0 < 0.95


def test_start_from_task_reruns_it_and_downstream_only(store: RunStore, root: Path) -> None:
    from kubelab.pipelines.local.engine import start_from_task

    run_pipeline(chain(3), {"x": 1}, store=store, pipeline_root=root)
    result = start_from_task(chain(3), {"x": 1}, "inc-1", store=store, pipeline_root=root)
    assert result.outputs == {"Output": 4}
    cached = {s["name"]: s["cached"] for s in result.run()["steps"]}
    assert cached == {"inc-0": True, "inc-1": False, "inc-2": False}
    with pytest.raises(KubelabError, match="no step 'nope'"):
        start_from_task(chain(3), {"x": 1}, "nope", store=store, pipeline_root=root)


def test_loop_over_dicts_with_expression_selector(store: RunStore, root: Path) -> None:
    """`with dsl.ParallelFor([{"a": 1}, ...]) as item: comp(x=item.a)` as KFP compiles it."""
    p = PipelineBuilder("selector")
    inc = p.component("inc", INC)
    body: dict = {
        "tasks": {},
        "outputs": {
            "parameters": {
                "ys": {"valueFromParameter": {"producerSubtask": "inc", "outputParameterKey": "y"}}
            }
        },
    }
    p.task(
        "inc",
        inc,
        dag=body,
        inputs={
            "parameters": {
                "x": {
                    "componentInputParameter": "pipelinechannel--loop-item-param-1",
                    "parameterExpressionSelector": 'parseJson(string_value)["a"]',
                }
            }
        },
    )
    loop = p.dag_component(
        "for-loop-1",
        body,
        inputDefinitions={
            "parameters": {"pipelinechannel--loop-item-param-1": {"parameterType": "STRUCT"}}
        },
        outputDefinitions={"parameters": {"ys": {"parameterType": "LIST"}}},
    )
    p.task(
        "for-loop-1",
        loop,
        parameterIterator={
            "itemInput": "pipelinechannel--loop-item-param-1",
            "items": {"raw": '[{"a": 1, "b": "x"}, {"a": 41, "b": "y"}]'},
        },
    )
    p.spec["root"]["dag"]["outputs"] = {
        "parameters": {
            "ys": {
                "valueFromParameter": {"producerSubtask": "for-loop-1", "outputParameterKey": "ys"}
            }
        }
    }
    result = run_pipeline(p.spec, store=store, pipeline_root=root)
    assert result.state == "succeeded", result.error
    assert result.outputs == {"ys": [2, 42]}


def test_interrupting_run_pipeline_cancels_the_run(store: RunStore, root: Path) -> None:
    """Ctrl-C (or "interrupt kernel") while run_pipeline blocks must not orphan the run."""
    import _thread

    p = PipelineBuilder("interrupt")
    p.task("slow", p.component("slow", shell_component("sleep 30")))

    def interrupt_when_running() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            runs = store.list_runs()  # the run is recorded a moment before its steps
            if runs and runs[0]["steps"] and runs[0]["steps"][0]["state"] == "running":
                break
            time.sleep(0.05)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_running, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(p.spec, store=store, pipeline_root=root)
    run = store.list_runs()[0]
    assert run["state"] == "cancelled"
    assert run["steps"][0]["state"] == "cancelled"


def test_tasks_run_in_workdir_and_outputs_default_under_it(store: RunStore, tmp_path: Path) -> None:
    p = PipelineBuilder("workdir")
    p.task(
        "where", p.component("where", shell_component('pwd > "$OUT_d"', outputs={"d": "STRING"}))
    )
    p.output("d", "where", "d")
    result = run_pipeline(p.spec, store=store, workdir=tmp_path)
    assert result.outputs == {"d": f"{tmp_path}\n"}
    assert Path(result.pipeline_root) == tmp_path / "local_outputs" / result.run_id


def test_engine_crash_kills_its_python_tasks_and_store_says_interrupted(tmp_path: Path) -> None:
    """A process running a pipeline dies: its forked task dies too, the run is interrupted."""
    import os
    import subprocess
    import sys

    from kubelab.client.store import INTERRUPTED_ERROR

    pid_file = tmp_path / "task.pid"
    script = textwrap.dedent(f"""
        from kubelab.pipelines import dsl
        from kubelab.pipelines.local.engine import start_run
        from kubelab.pipelines import compiler
        from kubelab.client.store import RunStore
        import time

        @dsl.component
        def hang(path: str):
            import os, time
            open(path, "w").write(str(os.getpid()))
            time.sleep(120)

        @dsl.pipeline(name="hang")
        def p(path: str):
            hang(path=path)

        start_run(compiler.build_pipeline_spec(p), {{"path": {str(pid_file)!r}}},
                  store=RunStore({str(tmp_path / "runs.db")!r}), pipeline_root={str(tmp_path)!r})
        time.sleep(120)
    """)
    (tmp_path / "crash.py").write_text(script)
    engine_proc = subprocess.Popen([sys.executable, str(tmp_path / "crash.py")], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline and engine_proc.poll() is None
            time.sleep(0.05)
        task_pid = int(pid_file.read_text())
        engine_proc.kill()
        engine_proc.wait()
        deadline = time.monotonic() + 5
        while True:
            try:
                os.kill(task_pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "the task outlived its engine"
            time.sleep(0.05)
        run = RunStore(tmp_path / "runs.db").list_runs()[0]
        assert run["state"] == "failed" and run["error"] == INTERRUPTED_ERROR
    finally:
        if engine_proc.poll() is None:
            engine_proc.kill()


def test_missing_command_fails_the_task_with_a_message(store: RunStore, root: Path) -> None:
    p = PipelineBuilder("no-such-command")
    comp = p.component("ghost", shell_component("true"))
    p.spec["deploymentSpec"]["executors"]["exec-ghost"]["container"].update(
        command=["kubelab-no-such-binary", "--flag"], args=[]
    )
    p.task("ghost", comp)
    result = run_pipeline(p.spec, store=store, pipeline_root=root)
    assert result.state == "failed"
    assert "exit code 127" in result.error
    log = Path(store.task_info(result.run_id, "ghost")["log_path"]).read_text()
    assert "cannot start 'kubelab-no-such-binary'" in log


def test_collected_artifacts_feed_an_artifact_iterator(store: RunStore, root: Path) -> None:
    """Loop 1 writes one file per item; loop 2 iterates over the collected files."""
    p = PipelineBuilder("artifact-loops")
    write = p.component(
        "write",
        shell_component(
            'printf "%s" "$IN_word" > "$ART_OUT_f"',
            inputs={"word": "STRING"},
            artifacts_out={"f": "system.Dataset"},
        ),
    )
    size = p.component(
        "size",
        shell_component(
            'wc -c < "$ART_IN_f" | tr -d " " > "$OUT_n"',
            artifacts_in={"f": "system.Dataset"},
            outputs={"n": "NUMBER_INTEGER"},
        ),
    )
    body1: dict = {
        "tasks": {},
        "outputs": {
            "artifacts": {
                "files": {
                    "artifactSelectors": [{"producerSubtask": "write", "outputArtifactKey": "f"}]
                }
            }
        },
    }
    p.task(
        "write",
        write,
        dag=body1,
        inputs={"parameters": {"word": from_parent("pipelinechannel--loop-item-param-1")}},
    )
    loop1 = p.dag_component(
        "for-loop-1",
        body1,
        inputDefinitions={
            "parameters": {"pipelinechannel--loop-item-param-1": {"parameterType": "STRING"}}
        },
        outputDefinitions={
            "artifacts": {
                "files": {"artifactType": {"schemaTitle": "system.Dataset"}, "isArtifactList": True}
            }
        },
    )
    p.task(
        "for-loop-1",
        loop1,
        parameterIterator={
            "itemInput": "pipelinechannel--loop-item-param-1",
            "items": {"raw": '["a", "bb", "cccc"]'},
        },
    )
    body2: dict = {
        "tasks": {},
        "outputs": {
            "parameters": {
                "sizes": {
                    "valueFromParameter": {"producerSubtask": "size", "outputParameterKey": "n"}
                }
            }
        },
    }
    p.task(
        "size",
        size,
        dag=body2,
        inputs={"artifacts": {"f": {"componentInputArtifact": "pipelinechannel--item"}}},
    )
    loop2 = p.dag_component(
        "for-loop-2",
        body2,
        inputDefinitions={
            "artifacts": {
                "pipelinechannel--files": {
                    "artifactType": {"schemaTitle": "system.Dataset"},
                    "isArtifactList": True,
                },
                "pipelinechannel--item": {"artifactType": {"schemaTitle": "system.Dataset"}},
            }
        },
        outputDefinitions={"parameters": {"sizes": {"parameterType": "LIST"}}},
    )
    p.task(
        "for-loop-2",
        loop2,
        after=["for-loop-1"],
        inputs={"artifacts": {"pipelinechannel--files": artifact_from("for-loop-1", "files")}},
        artifactIterator={
            "itemInput": "pipelinechannel--item",
            "items": {"inputArtifact": "pipelinechannel--files"},
        },
    )
    p.spec["root"]["dag"]["outputs"] = {
        "parameters": {
            "sizes": {
                "valueFromParameter": {
                    "producerSubtask": "for-loop-2",
                    "outputParameterKey": "sizes",
                }
            }
        }
    }
    result = run_pipeline(p.spec, store=store, pipeline_root=root)
    assert result.state == "succeeded", result.error
    assert result.outputs == {"sizes": [1, 2, 4]}


def test_wait_run_after_a_quick_run_already_ended(store: RunStore, root: Path) -> None:
    run_id = start_run(chain(1), store=store, pipeline_root=root)
    deadline = time.monotonic() + 10
    while store.get_run(run_id)["state"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)
    result = wait_run(run_id, timeout=1)
    assert result is not None and result.outputs == {"Output": 1}


def test_gpu_tasks_get_their_own_devices(store: RunStore, root: Path, monkeypatch) -> None:
    """With two visible devices, a 1-GPU task sees one of them, a CPU task sees none,
    and two 2-GPU tasks cannot overlap."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,7")
    p = PipelineBuilder("gpus")
    show = 'printf "%s" "$CUDA_VISIBLE_DEVICES" > "$OUT_d"; sleep 0.3'
    one = p.component(
        "one",
        shell_component(
            show,
            outputs={"d": "STRING"},
            resources={"accelerator": {"resourceType": "nvidia.com/gpu", "resourceCount": "1"}},
        ),
    )
    two = p.component(
        "two",
        shell_component(
            show,
            outputs={"d": "STRING"},
            resources={"accelerator": {"resourceType": "nvidia.com/gpu", "resourceCount": "2"}},
        ),
    )
    cpu = p.component("cpu", shell_component(show, outputs={"d": "STRING"}))
    p.task("one", one)
    p.task("two-a", two)
    p.task("two-b", two)
    p.task("cpu", cpu)
    t0 = time.monotonic()
    result = run_pipeline(
        p.spec, store=store, pipeline_root=root, parallelism=4, enable_caching=False
    )
    assert result.state == "succeeded", result.error
    assert time.monotonic() - t0 >= 0.9  # one, two-a, two-b need the GPUs one after another
    seen = {s["name"]: s["outputs"]["d"] for s in result.run()["steps"]}
    assert seen["one"] in ("4", "7")
    assert sorted(seen["two-a"].split(",")) == sorted(seen["two-b"].split(",")) == ["4", "7"]
    assert seen["cpu"] == ""
