"""`kubelab compile / run / runs` as a user runs them: real processes, a real store."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kubelab.client.store import RunStore

PIPELINE = textwrap.dedent(
    """
    from kubelab.pipelines import dsl

    @dsl.component
    def add(a: int, b: int) -> int:
        print("adding", a, b)
        return a + b

    @dsl.component
    def score(x: int, m: dsl.Output[dsl.Metrics]):
        m.log_metric("score", x * 2)

    @dsl.pipeline(name="cli-demo")
    def demo(a: int = 1, b: float = 2.0) -> int:
        s = add(a=a, b=int(2))
        score(x=s.output)
        return add(a=s.output, b=10).output
    """
)

FAILING = textwrap.dedent(
    """
    from kubelab.pipelines import dsl

    @dsl.component
    def boom():
        raise ValueError("bad data")

    @dsl.pipeline(name="failing")
    def failing():
        boom()
    """
)

SLOW = textwrap.dedent(
    """
    from kubelab.pipelines import dsl

    @dsl.component
    def slow():
        import time
        time.sleep(60)

    @dsl.pipeline(name="slow")
    def slow_pipeline():
        slow()
    """
)


def kubelab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubelab.client.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "demo.py").write_text(PIPELINE)
    (tmp_path / "failing.py").write_text(FAILING)
    (tmp_path / "slow.py").write_text(SLOW)
    return tmp_path


def test_run_json_summary_params_and_cache(workdir: Path) -> None:
    first = kubelab("run", "demo.py", "--param", "a=5", "--output", "json", cwd=workdir)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["state"] == "succeeded"
    assert summary["outputs"] == {"Output": 17}
    assert summary["metrics"] == {"score": 14}
    assert set(summary["steps"]) == {"add", "add-2", "score"}
    assert not any(s["cached"] for s in summary["steps"].values())
    assert "add: succeeded" in first.stderr  # live progress lines on stderr
    again = json.loads(
        kubelab("run", "demo.py", "-p", "a=5", "--output", "json", cwd=workdir).stdout
    )
    assert all(s["cached"] for s in again["steps"].values())
    fresh = json.loads(
        kubelab("run", "demo.py", "-p", "a=5", "--no-cache", "--output", "json", cwd=workdir).stdout
    )
    assert not any(s["cached"] for s in fresh["steps"].values())
    assert (workdir / "local_outputs" / summary["run_id"]).is_dir()


def test_bad_params_exit_2_with_valid_names(workdir: Path) -> None:
    unknown = kubelab("run", "demo.py", "--param", "zz=1", cwd=workdir)
    assert unknown.returncode == 2
    assert "unknown parameter 'zz'; valid parameters: a, b" in unknown.stderr
    typed = kubelab("run", "demo.py", "--param", "a=abc", cwd=workdir)
    assert typed.returncode == 2
    assert "parameter 'a': expected int" in typed.stderr


def test_failed_run_exits_1_and_logs_show_the_error(workdir: Path) -> None:
    result = kubelab("run", "failing.py", "--output", "json", cwd=workdir)
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["state"] == "failed"
    assert summary["steps"]["boom"]["state"] == "failed"
    logs = kubelab("runs", "logs", summary["run_id"], "boom", cwd=workdir)
    assert logs.returncode == 0
    assert "ValueError: bad data" in logs.stdout
    show = kubelab("runs", "show", summary["run_id"][:15], cwd=workdir)
    assert "failed" in show.stdout and "boom" in show.stdout


def test_compile_then_run_yaml_and_list_runs(workdir: Path) -> None:
    compiled = kubelab("compile", "demo.py", "-o", "demo.yaml", cwd=workdir)
    assert compiled.returncode == 0, compiled.stderr
    assert "schemaVersion: 2.1.0" in (workdir / "demo.yaml").read_text()
    result = kubelab(
        "run", "demo.yaml", "-p", "a=1", "-p", "b=3.5", "--output", "json", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["outputs"] == {"Output": 13}
    listed = json.loads(kubelab("runs", "list", "--output", "json", cwd=workdir).stdout)
    assert listed[0]["id"] == summary["run_id"]
    assert listed[0]["parameters"] == {"a": 1, "b": 3.5}
    text = kubelab("runs", "list", cwd=workdir).stdout
    assert summary["run_id"] in text and "cli-demo" in text


def test_cancel_from_another_process(workdir: Path, kubelab_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubelab.client.cli", "run", "slow.py"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        store = RunStore()
        deadline = time.monotonic() + 30
        run_id = None
        while run_id is None:
            assert time.monotonic() < deadline, "the run never started"
            runs = store.list_runs()
            if runs and runs[0]["steps"] and runs[0]["steps"][0]["state"] == "running":
                run_id = runs[0]["id"]
            time.sleep(0.1)
        cancel = kubelab("runs", "cancel", run_id, cwd=workdir)
        assert cancel.returncode == 0, cancel.stderr
        assert proc.wait(timeout=30) == 1
        run = store.get_run(run_id)
        assert run["state"] == "cancelled"
        assert run["steps"][0]["state"] == "cancelled"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_missing_file_and_unknown_run(workdir: Path) -> None:
    missing = kubelab("run", "nope.py", cwd=workdir)
    assert missing.returncode == 2 and "no such file: nope.py" in missing.stderr
    unknown = kubelab("runs", "show", "does-not-exist", cwd=workdir)
    assert unknown.returncode == 2 and "no run 'does-not-exist'" in unknown.stderr


VALID_IR = {
    "pipelineInfo": {"name": "echo"},
    "root": {
        "dag": {
            "tasks": {"echo": {"componentRef": {"name": "comp-echo"}, "taskInfo": {"name": "echo"}}}
        }
    },
    "components": {"comp-echo": {"executorLabel": "exec-echo"}},
    "deploymentSpec": {
        "executors": {"exec-echo": {"container": {"image": "alpine", "command": ["echo", "hi"]}}}
    },
    "schemaVersion": "2.1.0",
    "sdkVersion": "kfp-2.17.0",
}


def _broken(change: str) -> dict:
    ir = json.loads(json.dumps(VALID_IR))
    if change == "unknown field":
        ir["components_x"] = ir.pop("components")
    elif change == "empty name":
        ir["pipelineInfo"]["name"] = ""
    elif change == "missing component":
        ir["root"]["dag"]["tasks"]["echo"]["componentRef"]["name"] = "comp-nope"
    elif change == "missing executor":
        ir["deploymentSpec"]["executors"] = {}
    elif change == "wrong type":
        ir["root"]["dag"]["tasks"]["echo"]["taskInfo"] = "echo"
    return ir


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("unknown field", 'no field named "components_x"'),
        ("empty name", "pipelineInfo.name is empty"),
        ("missing component", "refers to component 'comp-nope'"),
        ("missing executor", "runs executor 'exec-echo'"),
        ("wrong type", "is not a valid KFP pipeline"),
        ("not yaml", "is not valid YAML"),
        ("empty", "is not a compiled pipeline"),
    ],
)
def test_invalid_compiled_pipeline_is_refused_without_a_run_record(
    tmp_path: Path, change: str, message: str
) -> None:
    path = tmp_path / "broken.yaml"
    if change == "not yaml":
        path.write_text("pipelineInfo: [unclosed\n")
    elif change == "empty":
        path.write_text("# nothing here\n")
    else:
        path.write_text(json.dumps(_broken(change)))
    result = kubelab("run", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert RunStore().list_runs() == []
    assert kubelab("run", str(_write(tmp_path, VALID_IR)), cwd=tmp_path).returncode == 0


def _write(directory: Path, ir: dict) -> Path:
    path = directory / "valid.yaml"
    path.write_text(json.dumps(ir))
    return path
