"""Local tuning overhead: 24 trials of a 0.5 s objective, 4 at a time.

    .venv/bin/python benchmarks/tuning_local.py [--repeat 3]

Side by side with plain optuna (`study.optimize(n_jobs=4)`, threads in one process:
what a user would otherwise write), on the same objective and seed. kubelab runs
every trial as its own process (forked from the engine's warm worker), parses its
`loss=` line as Katib's collector does and records it in the run store, so the
difference is what process isolation, metrics collection and recording cost.

Measured: wall time from `optimize()` to the job's end; per-trial overhead, the median
of (recorded trial duration - 0.5 s); the ideal is 6 waves x 0.5 s = 3.0 s.
Results go to benchmarks/results/tuning_local.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TRIALS, PARALLEL, SLEEP = 24, 4, 0.5


def objective(parameters):
    import time

    time.sleep(0.5)
    return (parameters["x"] - 2) ** 2 + (parameters["y"] + 1) ** 2


def run_kubelab(root: Path) -> dict[str, float]:
    from kubelab.workloads.optimizer import TPE, OptimizerClient, Search, TrialConfig

    client = OptimizerClient(root=root)
    start = time.perf_counter()
    name = client.optimize(
        objective,
        search_space={"x": Search.uniform(-5, 5), "y": Search.uniform(-5, 5)},
        algorithm=TPE(random_state=1),
        trial_config=TrialConfig(num_trials=TRIALS, parallel_trials=PARALLEL),
    )
    job = client.wait_for_job_status(name, timeout=120, polling_interval=0.05)
    wall = time.perf_counter() - start
    assert job.status == "Complete" and len(job.trials) == TRIALS, job.message
    overheads = [t.duration_s - SLEEP for t in job.trials]
    return {
        "wall_s": wall,
        "per_trial_overhead_ms": 1000 * statistics.median(overheads),
        "max_trial_overhead_ms": 1000 * max(overheads),
        "best": job.best_trial.objective,
    }


def run_optuna() -> dict[str, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def optuna_objective(trial: optuna.Trial) -> float:
        return objective(
            {"x": trial.suggest_float("x", -5, 5), "y": trial.suggest_float("y", -5, 5)}
        )

    start = time.perf_counter()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, constant_liar=True))
    study.optimize(optuna_objective, n_trials=TRIALS, n_jobs=PARALLEL)
    wall = time.perf_counter() - start
    durations = [
        (t.datetime_complete - t.datetime_start).total_seconds() - SLEEP for t in study.trials
    ]
    return {
        "wall_s": wall,
        "per_trial_overhead_ms": 1000 * statistics.median(durations),
        "max_trial_overhead_ms": 1000 * max(durations),
        "best": study.best_value,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("KUBELAB_HOME", tempfile.mkdtemp(prefix="kubelab-bench-"))
    results: dict[str, list[dict[str, float]]] = {"kubelab": [], "optuna": []}
    with tempfile.TemporaryDirectory() as root:
        for _ in range(args.repeat):
            results["kubelab"].append(run_kubelab(Path(root)))
            results["optuna"].append(run_optuna())
    summary = {
        side: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for side, runs in results.items()
    }
    summary["load_average"] = os.getloadavg()[0]
    summary["cpus"] = os.cpu_count()
    out = Path(__file__).parent / "results" / "tuning_local.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": results, "median": summary}, indent=2))
    k, o = summary["kubelab"], summary["optuna"]
    print(
        f"{TRIALS} trials of {SLEEP} s, {PARALLEL} at a time, {os.cpu_count()} CPUs, load {summary['load_average']:.1f}"
    )
    print(f"{'':<10} {'wall':>8} {'overhead/trial':>15} {'max':>8}")
    for side, r in (("kubelab", k), ("optuna", o)):
        print(
            f"{side:<10} {r['wall_s']:>7.2f}s {r['per_trial_overhead_ms']:>13.1f}ms {r['max_trial_overhead_ms']:>6.0f}ms"
        )
    ok = k["wall_s"] < 5 and k["per_trial_overhead_ms"] < 100
    print("target (< 5 s, < 100 ms per trial):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
