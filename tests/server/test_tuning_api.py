"""Tuning through the REST jobs API on a real jupyter server: what the sidebar reads."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import kubelab_api as api

TRAIN = """\
import argparse, time

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--optimizer")
args = parser.parse_args()
for epoch in (1, 2, 3):
    time.sleep(0.05)
    print(f"epoch={epoch} loss={(args.lr - 0.02) ** 2 * 100 / epoch + (0.1 if args.optimizer == 'sgd' else 0):.6f}")
"""

SPEC = {
    "template": {"kind": "script", "path": "train.py"},
    "search_space": {
        "lr": {"type": "loguniform", "min": 0.001, "max": 0.1},
        "optimizer": {"type": "choice", "values": ["sgd", "adam"]},
    },
    "objectives": [{"metric": "loss", "direction": "minimize"}],
    "algorithm": {"name": "tpe", "settings": {"random_state": 1}},
    "trial_config": {"num_trials": 4, "parallel_trials": 2},
}


async def test_a_tuning_job_from_rest_shows_trials_best_and_chart(
    jp_fetch, jp_root_dir: Path
) -> None:
    (jp_root_dir / "train.py").write_text(TRAIN)
    status, created = await api.call(
        jp_fetch, "POST", "jobs", body={"kind": "tuning", "spec": SPEC, "name": "rest-tune"}
    )
    assert status == 201 and created == {"id": "rest-tune", "kind": "tuning", "backend": "local"}
    deadline = time.monotonic() + 90
    while True:
        _, job = await api.call(jp_fetch, "GET", "jobs", "rest-tune")
        if job["state"] not in ("pending", "running"):
            break
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.2)
    assert job["state"] == "succeeded", job["error"]
    view = job["tuning"]
    assert view["counts"]["trials"] == 4 and view["counts"]["succeeded"] == 4
    assert view["objective"] == {
        "metric": "loss",
        "type": "minimize",
        "goal": None,
        "additional_metrics": [],
        "strategy": "min",
    }
    assert [p["name"] for p in view["parameters"]] == ["lr", "optimizer"]
    for trial in view["trials"]:
        assert set(trial["parameters"]) == {"lr", "optimizer"}
        assert trial["condition"] == "Succeeded" and trial["duration_s"] > 0.1
        assert len(trial["series"]["loss"]) == 3 and [
            p["step"] for p in trial["series"]["loss"]
        ] == [1, 2, 3]
        assert trial["objective"] == trial["metrics"]["loss"]["min"]
    best = min(view["trials"], key=lambda t: t["objective"])
    assert view["best"]["trial"] == best["name"] and best["best"]
    assert job["metrics"] == {"loss": best["objective"]}
    assert [c["best_so_far"] for c in view["chart"]][-1] == best["objective"]
    _, log = await api.call(jp_fetch, "GET", "jobs", "rest-tune", "steps", best["name"], "logs")
    assert "loss=" in log["text"] and log["complete"]
    _, metrics = await api.call(jp_fetch, "GET", "jobs", "rest-tune", "metrics")
    assert set(metrics["series"]) == {t["name"] for t in view["trials"]}
    _, listed = await api.call(jp_fetch, "GET", "jobs", kind="tuning")
    assert [j["id"] for j in listed["jobs"]] == ["rest-tune"]
    # The list shows each job as GET does: the sidebar's rows show counts and the best.
    assert listed["jobs"][0]["tuning"]["counts"] == view["counts"]
    assert listed["jobs"][0]["tuning"]["best"] == view["best"]
    status, _ = await api.call(jp_fetch, "DELETE", "jobs", "rest-tune")
    assert status == 200


async def test_bad_tuning_specs_are_400s_naming_the_field(jp_fetch, jp_root_dir: Path) -> None:
    (jp_root_dir / "train.py").write_text(TRAIN)
    bad = {**SPEC, "search_space": {"lr": {"type": "uniform", "min": 1, "max": 0}}}
    status, error = await api.refused(
        jp_fetch, "POST", "jobs", body={"kind": "tuning", "spec": bad}
    )
    assert status == 400
    assert error["field"] == "spec.parameters[0] (lr).feasibleSpace"
    assert "min 1 is greater than max 0" in error["message"]
    bad = {**SPEC, "algorithm": {"name": "bayesianoptimization"}}
    status, error = await api.refused(
        jp_fetch, "POST", "jobs", body={"kind": "tuning", "spec": bad}
    )
    assert status == 400 and "runs only on Katib" in error["message"]
    outside = {**SPEC, "template": {"kind": "script", "path": "../train.py"}}
    status, error = await api.refused(
        jp_fetch, "POST", "jobs", body={"kind": "tuning", "spec": outside}
    )
    assert status == 403 and error["field"] == "template.path"
