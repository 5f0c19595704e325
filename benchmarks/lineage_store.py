"""Listing, opening and comparing runs in a big store: kubelab's lineage vs MLflow's.

    .venv/bin/python benchmarks/lineage_store.py [--runs 10000] [--steps 20] [--mlflow-runs N]

Builds a run store of `--runs` pipeline runs of `--steps` steps each, through the
same calls the engine makes (`RunStore.create_run/add_task/update_task`,
`Lineage.record_run/record_step`): every step an execution with its parameters, its
code (a snapshot file; the code changes every 50 runs, so some compared pairs carry
a diff), an input artifact (the previous step's output) and an output artifact with
a digest; every run a source snapshot, the environment, 3 parameters, 2 metrics and
a 10-point metric series, in 5 experiments. Then it times, over `--repeat` random
runs:

- list: `Client.list_runs(100)` (what `GET runs` and the sidebar ask for; each run
  with its 20 steps) and `list_runs(20)` (`kubelab runs list`);
- open: `Client.get_run(id)` and `Client.run_lineage(id)` (the run with its steps,
  and where it came from with every step's artifacts);
- compare: `Client.compare_runs([a, b])` (parameters, metrics, series, steps with
  code diffs, input and output digests, environment);
- lineage: `Client.artifact_lineage` of the last step's output (a 20-step walk).

"warm" is a long-lived process (the jupyter server); "cold" is the first call of a
fresh process after opening the store (the CLI; Python's own start-up not counted).

MLflow, what a user would otherwise pick, gets the same runs through `MlflowClient`
(its SQLite store, MLflow's recommended local backend): the parameters, the metrics
and series, and per step the tags kubelab's MLflow export writes (code digest,
output digest and URI). Timed: `search_runs(max_results=100)` (list), `get_run`
(open), two `get_run` + the series' `get_metric_history` (compare). MLflow has no
steps or lineage graph to walk, so there is no MLflow figure for those.

`--recording` measures instead what recording costs a run: a 20-step chain of
trivial components on the local engine, with the time spent in `recording.start`
(snapshots, git, environment, the run's records) and `recording.step` (code snapshot,
digests, the step's execution and events) taken apart from the rest.

JSON goes to benchmarks/results/ (gitignored). Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
EXPERIMENTS = 5
CODE_EVERY = 50  # runs between changes of the steps' code and the source


def build_kubelab(home: Path, runs: int, steps: int) -> float:
    from kubelab.client import provenance
    from kubelab.client.lineage import ENVIRONMENT, PIPELINE_SPEC, SOURCE, ArtifactRecord
    from kubelab.client.store import RunStore

    store = RunStore(home / "kubelab.db")
    lineage = store.lineage
    env = provenance.environment()
    env_digest = env.pop("digest")
    rng = random.Random(1)
    started = time.perf_counter()
    base = time.time() - runs * 60
    for r in range(runs):
        version = r // CODE_EVERY
        run_id = f"20260101-{r:06d}-bench"
        params = {"n_estimators": 50 + r % 7, "max_depth": 3 + r % 4, "seed": 0}
        source_digest, source_path = provenance.snapshot_text(
            home, f"# notebook version {version}\n", ".ipynb"
        )
        with store.transaction():
            store.create_run(
                "bench", params, run_id=run_id, source=f"/home/u/nb{r % EXPERIMENTS}.ipynb"
            )
            lineage.record_run(
                run_id,
                experiment=f"nb{r % EXPERIMENTS}.ipynb",
                properties={
                    "name": "bench",
                    "parameters": params,
                    "backend": "local",
                    "user": "alice",
                    "source_path": f"/home/u/nb{r % EXPERIMENTS}.ipynb",
                },
                facts={
                    "source": ArtifactRecord(SOURCE, str(source_path), source_digest, "nb.ipynb"),
                    "pipeline_spec": ArtifactRecord(
                        PIPELINE_SPEC, "/spec", f"sha256:spec{version}"
                    ),
                    "environment": ArtifactRecord(ENVIRONMENT, "", env_digest, "python", env),
                },
            )
            previous = None
            for s in range(steps):
                task = f"step-{s:02d}"
                store.add_task(run_id, task, metadata={"cells": [s + 3], "step": task})
                t0 = base + r * 60 + s
                store.update_task(
                    run_id,
                    task,
                    state="succeeded",
                    started_at=t0,
                    finished_at=t0 + 0.5,
                    attempts=1,
                    cache_key=f"{r}-{s}",
                    outputs={"out": {"uri": f"/runs/{run_id}/{task}/out"}},
                )
                code = f"# cell {s + 3}\nx = step({s}, version={version})\n"
                code_digest, code_path = provenance.snapshot_text(home, code, ".py")
                output = ArtifactRecord(
                    "system.Artifact",
                    f"/runs/{run_id}/{task}/out",
                    f"sha256:{rng.getrandbits(128):032x}",
                    "out",
                    {"value_type": "numpy.ndarray"},
                )
                lineage.record_step(
                    run_id,
                    task,
                    state="COMPLETE",
                    properties={
                        "inputs": {"n_estimators": params["n_estimators"]},
                        "outputs": {},
                        "cached": False,
                        "code_digest": code_digest,
                        "code": str(code_path),
                        "image": "python:3.11",
                        "step": task,
                        "cells": [s + 3],
                    },
                    inputs=[("data", 0, previous)] if previous else [],
                    outputs=[("out", 0, output)],
                )
                previous = output
            for epoch in range(10):
                store.add_metrics(
                    run_id, {"loss": 1 / (epoch + 1 + r % 5)}, task="train", step=epoch
                )
            store.update_run(
                run_id,
                state="succeeded",
                finished_at=base + r * 60 + steps,
                metrics={"accuracy": 0.8 + (r % 10) / 100, "loss": 1 / (10 + r % 5)},
            )
            store.query("UPDATE runs SET created_at=? WHERE id=?", (base + r * 60, run_id))
        if r and r % 1000 == 0:
            print(f"  kubelab: {r} runs", file=sys.stderr, flush=True)
    return time.perf_counter() - started


# Both measuring scripts time their operations the same way.
TIMING = """
import json, random, statistics, sys, time

def timed(ops, repeat, result):
    for name, op in ops.items():
        t = time.perf_counter(); op(); cold = (time.perf_counter() - t) * 1000
        times = []
        for _ in range(repeat):
            t = time.perf_counter(); op(); times.append((time.perf_counter() - t) * 1000)
        times.sort()
        result[name] = {"cold_ms": cold, "median_ms": statistics.median(times),
                        "p95_ms": times[int(len(times) * 0.95) - 1], "max_ms": times[-1]}
    return result
"""

MEASURE = (
    TIMING
    + """
from kubelab.client import Client

home, repeat, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = time.perf_counter()
client = Client(home=home, root=home)
opened = time.perf_counter() - t0
ids = [f"20260101-{r:06d}-bench" for r in range(runs)]
rng = random.Random(7)
ops = {
    "list 100": lambda: client.list_runs(100),
    "list 20": lambda: client.list_runs(20),
    "open: get_run": lambda: client.get_run(rng.choice(ids)),
    "open: run_lineage": lambda: client.run_lineage(rng.choice(ids)),
    "compare 2": lambda: client.compare_runs(rng.sample(ids, 2)),
    "lineage of the last output": lambda: client.artifact_lineage(rng.choice(ids) + "/step-19/out"),
    "experiments list": lambda: client.list_experiments(),
}
result = timed(ops, repeat, {"open_store_ms": opened * 1000})
# A compare of two runs on both sides of a code change carries diffs.
pair = [ids[49], ids[50]]
t = time.perf_counter(); c = client.compare_runs(pair)
result["compare 2 with code diffs"] = {"ms": (time.perf_counter() - t) * 1000,
    "steps_with_diffs": sum(1 for s in c["steps"] if s["code_changed"])}
print(json.dumps(result))
"""
)


def build_mlflow(uri: str, runs: int, steps: int) -> float:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(uri)
    experiments = [client.create_experiment(f"nb{e}.ipynb") for e in range(EXPERIMENTS)]
    rng = random.Random(1)
    started = time.perf_counter()
    base = int((time.time() - runs * 60) * 1000)
    for r in range(runs):
        run = client.create_run(
            experiments[r % EXPERIMENTS], start_time=base + r * 60000, run_name="bench"
        )
        run_id = run.info.run_id
        params = [
            Param("n_estimators", str(50 + r % 7)),
            Param("max_depth", str(3 + r % 4)),
            Param("seed", "0"),
        ]
        tags = [RunTag("kubelab.run_id", f"20260101-{r:06d}-bench")]
        for s in range(steps):
            tags.append(
                RunTag(f"kubelab.step.step-{s:02d}.code_digest", f"sha256:{r // CODE_EVERY:064x}")
            )
            tags.append(
                RunTag(
                    f"kubelab.output.step-{s:02d}.out",
                    f"sha256:{rng.getrandbits(128):032x} /runs/{r}/step-{s:02d}/out",
                )
            )
        metrics = [Metric("loss", 1 / (e + 1 + r % 5), base + r * 60000 + e, e) for e in range(10)]
        metrics.append(Metric("accuracy", 0.8 + (r % 10) / 100, base + r * 60000, 0))
        client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run_id, "FINISHED", end_time=base + r * 60000 + 20000)
        if r and r % 1000 == 0:
            print(f"  mlflow: {r} runs", file=sys.stderr, flush=True)
    return time.perf_counter() - started


MEASURE_MLFLOW = (
    TIMING
    + """
t0 = time.perf_counter()
from mlflow import MlflowClient
imported = time.perf_counter() - t0
uri, repeat = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
client = MlflowClient(uri)
experiments = [e.experiment_id for e in client.search_experiments()]
ids = [r.info.run_id for r in client.search_runs(experiments, max_results=50000)]
opened = time.perf_counter() - t0
rng = random.Random(7)
def compare():
    a, b = rng.sample(ids, 2)
    runs = [client.get_run(a), client.get_run(b)]
    series = [client.get_metric_history(x, "loss") for x in (a, b)]
    return runs, series
ops = {
    "list 100": lambda: client.search_runs(experiments, max_results=100, order_by=["attributes.start_time DESC"]),
    "list 20": lambda: client.search_runs(experiments, max_results=20, order_by=["attributes.start_time DESC"]),
    "open: get_run": lambda: client.get_run(rng.choice(ids)),
    "compare 2": compare,
    "experiments list": lambda: client.search_experiments(),
}
result = timed(ops, repeat, {"import_mlflow_ms": imported * 1000, "open_store_ms": opened * 1000,
                             "runs": len(ids)})
print(json.dumps(result))
"""
)


def recording_cost(repeat: int) -> dict:
    """Milliseconds per run start and per step spent recording lineage."""
    from kubelab.client.store import RunStore
    from kubelab.pipelines import compiler, dsl
    from kubelab.pipelines.local import engine, recording

    @dsl.component
    def inc(x: int) -> int:
        return x + 1

    @dsl.pipeline(name="chain")
    def chain(x: int = 0) -> int:
        task = inc(x=x)
        for _ in range(19):
            task = inc(x=task.output)
        return task.output

    spent = {"start": 0.0, "step": 0.0, "steps": 0}

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> None:
            t = time.perf_counter()
            function(*args, **kwargs)
            spent[name] += time.perf_counter() - t
            spent["steps"] += name == "step"

        return wrapper

    recording.start = timed("start", recording.start)
    recording.step = timed("step", recording.step)
    ir = compiler.build_pipeline_spec(chain)
    folder = Path(tempfile.mkdtemp(prefix="kubelab-recording-"))
    store = RunStore(folder / "kubelab.db")
    totals = []
    for index in range(repeat + 1):
        t = time.perf_counter()
        result = engine.run_pipeline(
            ir,
            {},
            store=store,
            enable_caching=False,
            on_event=lambda e: None,
            pipeline_root=folder / "out",
        )
        assert result.state == "succeeded", result.error
        if index == 0:  # warm-up: the worker's first fork, the environment's first read
            spent.update(start=0.0, step=0.0, steps=0)
            continue
        totals.append((time.perf_counter() - t) * 1000 / 20)
    return {
        "runs": repeat,
        "per_task_ms_median": statistics.median(totals),
        "recording_start_ms": spent["start"] * 1000 / repeat,
        "recording_step_ms": spent["step"] * 1000 / max(spent["steps"], 1),
    }


def measure(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--mlflow-runs", type=int, default=None, help="default: --runs; 0 skips")
    parser.add_argument("--workdir", help="keep the stores here (default: a temporary folder)")
    parser.add_argument("--recording", action="store_true", help="measure recording's cost")
    args = parser.parse_args()
    if args.recording:
        cost = recording_cost(min(args.repeat, 10))
        print(json.dumps(cost, indent=1))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="kubelab-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "kubelab"
    result: dict = {"runs": args.runs, "steps": args.steps, "repeat": args.repeat}
    if not (home / "kubelab.db").exists():
        home.mkdir(parents=True, exist_ok=True)
        print(
            f"building a kubelab store of {args.runs} runs x {args.steps} steps in {home}",
            file=sys.stderr,
        )
        result["kubelab_build_s"] = build_kubelab(home, args.runs, args.steps)
    result["kubelab_db_mb"] = (home / "kubelab.db").stat().st_size / 1e6
    result["kubelab"] = measure(MEASURE, str(home), str(args.repeat), str(args.runs))
    print(json.dumps(result["kubelab"], indent=1), file=sys.stderr)
    mlflow_runs = args.runs if args.mlflow_runs is None else args.mlflow_runs
    if mlflow_runs:
        db = work / "mlflow.db"
        uri = f"sqlite:///{db}"
        if not db.exists():
            print(f"building an MLflow store of {mlflow_runs} runs in {db}", file=sys.stderr)
            result["mlflow_build_s"] = build_mlflow(uri, mlflow_runs, args.steps)
        result["mlflow_runs"] = mlflow_runs
        result["mlflow_db_mb"] = db.stat().st_size / 1e6
        result["mlflow"] = measure(MEASURE_MLFLOW, uri, str(args.repeat))
        print(json.dumps(result["mlflow"], indent=1), file=sys.stderr)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"lineage_store-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
