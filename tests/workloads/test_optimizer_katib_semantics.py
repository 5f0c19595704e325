"""The pieces that must read metrics, suggest and stop trials as Katib does."""

from __future__ import annotations

import pytest
from optimizer_helpers import job_experiment
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from kubelab.workloads.metrics import parse_line
from kubelab.workloads.optimizer import experiment as katib
from kubelab.workloads.optimizer.collect import Collector, objective_value
from kubelab.workloads.optimizer.earlystop import RuleChecker, medianstop_rules
from kubelab.workloads.optimizer.suggest import Suggester, distributions
from kubelab.workloads.optimizer.view import tuning_view


def experiment(**spec):
    return katib.apply_defaults(job_experiment(**spec))


def test_the_default_filter_is_katibs_with_go_ascii_classes() -> None:
    # RE2's \w is ASCII: Katib reads "ve" from "naïve=1", never "naïve".
    assert parse_line("naïve=1 loss=0.5") == (None, {"ve": 1.0, "loss": 0.5})
    assert parse_line("Score=-7.53e-05 accuracy=.98 x = 1E0") == (
        None,
        {"Score": -7.53e-05, "accuracy": 0.98, "x": 1.0},
    )


def test_stdout_collection_keeps_named_metrics_and_observes_min_max_latest() -> None:
    exp = experiment()
    exp["spec"]["objective"]["additionalMetricNames"] = ["accuracy"]
    collector = Collector.for_experiment(exp)
    points = collector.feed("epoch 1: loss=0.5 accuracy=0.7 lr=0.1\nepoch=2 loss=0.3")
    assert [(p.name, p.value, p.step) for p in points] == [("loss", 0.5, 1), ("accuracy", 0.7, 1)]
    points = collector.feed(" accuracy=0.8\nloss=0.4\n", final=True)
    assert [(p.name, p.value, p.step) for p in points] == [
        ("loss", 0.3, 2),
        ("accuracy", 0.8, 2),
        ("loss", 0.4, 3),
    ]
    observation = collector.observation()
    assert observation["loss"] == {"min": 0.3, "max": 0.5, "latest": 0.4}
    assert objective_value(exp, observation) == 0.3  # minimize: the min strategy
    exp["spec"]["objective"]["metricStrategies"][0]["value"] = "latest"
    assert objective_value(exp, observation) == 0.4


def test_custom_filters_and_json_files_are_read_as_katib_reads_them() -> None:
    exp = experiment(
        metricsCollectorSpec={
            "collector": {"kind": "File"},
            "source": {"filter": {"metricsFormat": [r"(\w+):\s*([\d.]+)"]}},
        }
    )
    collector = Collector.for_experiment(exp)
    assert [p.value for p in collector.feed("loss: 0.25 loss=9\n")] == [0.25]
    exp = experiment(
        metricsCollectorSpec={
            "collector": {"kind": "File"},
            "source": {"fileSystemPath": {"path": "/m.json", "kind": "File", "format": "JSON"}},
        }
    )
    collector = Collector.for_experiment(exp)
    assert [p.value for p in collector.feed('{"loss": "0.5"}\n{"loss": 0.4}\n')] == [0.5]
    assert "reads only string values" in collector.notes[0]


def test_medianstop_rule_is_the_mean_of_early_averages_checked_at_start_step() -> None:
    exp = experiment(earlyStopping={"algorithmName": "medianstop", "algorithmSettings": [
        {"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "2"}
    ]})  # fmt: skip
    assert medianstop_rules(exp, [[1.0, 3.0, 0.0]]) == []  # one succeeded trial: no rule yet
    [rule] = medianstop_rules(exp, [[1.0, 3.0, 0.0], [2.0, 2.0]])
    assert (rule.value, rule.comparison, rule.start_step) == (2.0, "greater", 2)
    # The best value so far is compared once, at the second report.
    checker = RuleChecker([rule], "loss", "minimize")
    assert not checker.observe("loss", 2.5)
    assert checker.observe("loss", 2.1)  # best so far 2.1 > 2.0
    late = RuleChecker([rule], "loss", "minimize")
    assert not late.observe("loss", 1.0) and not late.observe("loss", 5.0)
    assert not late.observe("loss", 9.0)  # after start_step, Katib's collector never rechecks


def test_optuna_sees_katibs_distributions() -> None:
    space = distributions(
        [
            {"name": "a", "parameterType": "int", "feasibleSpace": {"min": "0", "max": "64", "distribution": "logUniform"}},
            {"name": "b", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1", "distribution": "logUniform"}},
            {"name": "c", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1", "step": "0.25"}},
            {"name": "d", "parameterType": "discrete", "feasibleSpace": {"list": ["1", "2"]}},
        ]
    )  # fmt: skip
    assert space["a"] == IntDistribution(1, 64, log=True)
    assert space["b"] == FloatDistribution(1e-10, 1, log=True)
    assert space["c"] == FloatDistribution(0, 1, step=0.25)
    assert space["d"] == CategoricalDistribution(["1", "2"])


@pytest.mark.parametrize("algorithm", ["random", "tpe", "multivariate-tpe", "cmaes"])
def test_seeded_suggestions_repeat(algorithm: str) -> None:
    exp = experiment()
    exp["spec"]["parameters"][1] = {
        "name": "momentum",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.5", "max": "0.99"},
    }
    exp["spec"]["algorithm"] = {
        "algorithmName": algorithm,
        "algorithmSettings": [{"name": "random_state", "value": "42"}],
    }

    def run() -> list[dict[str, str]]:
        suggester = Suggester(exp)
        asked = []
        for _ in range(12):
            a = suggester.ask()
            asked.append(a.assignments)
            suggester.tell(a.number, float(a.assignments["lr"]) + float(a.assignments["momentum"]))
        return asked

    first = run()
    assert first == run()
    assert all(0.01 <= float(a["lr"]) <= 0.05 for a in first)


def test_grid_hands_out_every_combination_once_then_ends() -> None:
    exp = experiment(maxTrialCount=6)
    exp["spec"]["algorithm"] = {"algorithmName": "grid"}
    exp["spec"]["parameters"][0]["feasibleSpace"].update(step="0.02")  # 0.01, 0.03, 0.05
    suggester = Suggester(exp, fallback_seed=0)
    seen = []
    while not suggester.exhausted:
        a = suggester.ask()
        seen.append((a.assignments["lr"], a.assignments["optimizer"]))
        suggester.tell(a.number, 1.0)
    assert sorted(seen) == sorted(
        (lr, o) for lr in ("0.01", "0.03", "0.05") for o in ("sgd", "adam")
    )


def test_the_view_counts_trials_and_draws_best_so_far() -> None:
    def step(name: str, condition: str, objective: float | None, started: str) -> dict:
        state = {"Succeeded": "succeeded", "EarlyStopped": "succeeded", "Failed": "failed"}[
            condition
        ]
        metrics = (
            {}
            if objective is None
            else {"loss": {"min": objective, "max": objective, "latest": objective}}
        )
        return {
            "name": name,
            "state": state,
            "started_at": started,
            "finished_at": None,
            "duration_s": 1.0,
            "error": None,
            "outputs": {
                "parameters": {"lr": 0.1},
                "metrics": metrics,
                "objective": objective,
                "condition": condition,
            },
        }

    job = {
        "id": "j",
        "name": "j",
        "state": "succeeded",
        "error": None,
        "spec": {"experiment": experiment()},
        "steps": [
            step("trial-0002", "Succeeded", 0.5, "2026-01-01T00:00:02Z"),
            step("trial-0001", "Succeeded", 0.8, "2026-01-01T00:00:01Z"),
            step("trial-0003", "Failed", None, "2026-01-01T00:00:03Z"),
            step("trial-0004", "EarlyStopped", 0.3, "2026-01-01T00:00:04Z"),
        ],
    }
    view = tuning_view(job, {"trial-0001": {"loss": [{"step": 1, "value": 0.9, "ts": 0}]}})[
        "tuning"
    ]
    assert [c["best_so_far"] for c in view["chart"]] == [0.8, 0.5, 0.5, 0.3]
    assert view["best"]["trial"] == "trial-0004"
    assert view["counts"]["succeeded"] == 2 and view["counts"]["early_stopped"] == 1
    assert view["counts"]["failed"] == 1
    assert view["trials"][0]["intermediate"] == [0.9]
    assert [t["best"] for t in view["trials"]] == [False, False, False, True]
