"""validate_notebook and run_notebook on real notebooks, plus the `kubelab validate` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubelab.client.cli.main import main
from kubelab.client.store import RunStore
from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook import run_notebook, validate_notebook

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.ipynb"

PLAIN = [
    ("import json", "imports"),
    ("n = 3", "pipeline-parameters"),
    ("items = list(range(n))\ndef square(v):\n    return v * v", "step:make"),
    ("squares = [square(v) for v in items]", "step:left"),
    ("total = sum(items)", "step:right"),
    ("report = json.dumps({'squares': squares, 'total': total})", "step:join"),
    ("total", "pipeline-metrics"),
]


def test_validate_roundtrips_every_variable(make_notebook):
    report = validate_notebook(make_notebook(*PLAIN))
    assert report.ok, report.format_text()
    checks = {(v.name, v.producer): v for v in report.variables}
    assert set(checks) == {
        ("items", "make"), ("square", "make"), ("squares", "left"), ("total", "right"),
    }  # fmt: skip
    assert checks[("items", "make")].consumers == ["left", "right"]
    assert all(v.ok and v.marshaller == "cloudpickle" for v in report.variables)
    assert report.metrics == {"total": 3.0}
    assert [s.name for s in report.steps] == ["make", "left", "right", "join", "pipeline-metrics"]


def test_validate_reports_unserializable_variable(make_notebook):
    path = make_notebook(
        ("rows = (i for i in range(3))", "step:produce"),
        ("print(list(rows))", "step:consume"),
    )
    report = validate_notebook(path)
    assert not report.ok
    [check] = report.variables
    assert (check.name, check.producer, check.ok, check.cell) == ("rows", "produce", False, 0)
    assert "generator" in check.error
    error = next(e for e in report.errors if e.get("variable") == "rows")
    assert error["cell"] == 0 and error["step"] == "produce"
    assert report.steps[1].skipped


def test_validate_reports_runtime_error_with_cell_and_line(make_notebook):
    path = make_notebook(("x = 1", "step:a"), "md", ("y = x\nz = y / 0", "step:b"))
    report = validate_notebook(path)
    assert not report.ok
    failed = report.steps[1]
    assert (failed.name, failed.cell, failed.line) == ("b", 2, 2)
    assert "ZeroDivisionError" in failed.error
    assert "<notebook cell 3, step b>" in failed.traceback  # counted from 1, as people do


def test_validate_reports_graph_errors_without_raising(make_notebook):
    report = validate_notebook(make_notebook(("x = nope", "step:a")))
    assert not report.ok and report.errors[0]["cell"] == 0 and report.errors[0]["step"] == "a"


def test_cli_validate_exit_codes_and_json(make_notebook, capsys):
    good = make_notebook(*PLAIN)
    assert main(["validate", str(good), "-p", "n=4"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "total=6" in out
    bad = make_notebook(("f = open('x.txt', 'w')", "step:a"), ("f.write('1')", "step:b"))
    assert main(["validate", str(bad), "--output", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["variables"][0]["name"] == "f" and data["variables"][0]["ok"] is False
    assert main(["validate", str(good), "-p", "n=lots"]) == 2  # bad parameter value
    assert "n" in capsys.readouterr().err
    # Static checks only: the unsavable file handle is not noticed, undefined names are.
    assert main(["validate", str(bad), "--no-execute"]) == 0
    capsys.readouterr()
    assert main(["validate", str(make_notebook(("y = x", "step:a"))), "--no-execute"]) == 1
    assert "'x' is used but not defined" in capsys.readouterr().out


def test_top_level_kubelab_run_notebook_is_this_function():
    import kubelab

    assert kubelab.run_notebook is run_notebook


def test_run_notebook_demo_end_to_end(tmp_path):
    result = run_notebook(DEMO, n_estimators=5, pipeline_root=tmp_path / "out")
    assert result.state == "succeeded", result.error
    run = result.run()
    assert set(run["metrics"]) == {"forest_accuracy", "logreg_accuracy"}
    assert all(0.5 <= v <= 1.0 for v in run["metrics"].values())
    assert run["parameters"]["n_estimators"] == 5
    steps = {s["display_name"]: s for s in run["steps"]}
    assert steps["train_forest"]["cells"] == [8]
    # The two training steps ran at the same time.
    a, b = steps["train_forest"], steps["train_logreg"]
    assert a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]


def test_steps_run_in_the_notebooks_directory(make_notebook, tmp_path):
    path = make_notebook(
        ("text = open('data.txt').read()", "step:read"),
        ("size = len(text)", "step:measure"),
        ("size", "pipeline-metrics"),
    )
    (path.parent / "data.txt").write_text("twelve chars")
    assert Path.cwd() != path.parent
    result = run_notebook(path, pipeline_root=tmp_path / "out", enable_caching=False)
    assert result.state == "succeeded", result.error
    assert result.run()["metrics"] == {"size": 12.0}


def test_run_notebook_failure_log_points_at_cell(make_notebook, tmp_path):
    path = make_notebook(("x = 0", "step:a"), "md", ("y = 1\nz = y / x", "step:b"))
    result = run_notebook(path, pipeline_root=tmp_path / "out", enable_caching=False)
    assert result.state == "failed"
    store = RunStore()
    log = Path(store.task_info(result.run_id, "b")["log_path"]).read_text()
    assert 'File "<notebook cell 3, step b>", line 2' in log  # index 2 is the 3rd cell
    assert "z = y / x" in log
    assert "failed in notebook cell 3, line 2" in log


def test_preload_modules_are_the_notebooks_ml_imports(make_notebook):
    from kubelab.pipelines.notebook import compile_notebook
    from kubelab.pipelines.notebook.run import preload_modules

    path = make_notebook(
        (
            "import json\nimport numpy as np\nfrom sklearn.svm import SVC\nfrom . import x",
            "imports",
        ),
        ("import pandas as pd\ny = 1", "step:a"),
        ("from scipy import stats\nimport not_a_fork_safe_library", "step:b"),
    )
    assert preload_modules(compile_notebook(path)) == [
        "kubelab.pipelines.notebook.runtime", "xxhash", "numpy", "sklearn.svm", "sklearn.svm.SVC",
        "pandas", "scipy", "scipy.stats",
    ]  # fmt: skip


def test_cli_run_preloads_the_notebooks_modules_in_the_fork_server(make_notebook):
    """Issue 20: the first step already finds the modules that later steps import in
    `sys.modules`, inherited from the fork server that imported them before forking."""
    import subprocess
    import sys

    path = make_notebook(
        ("import sys\nseen = ['scipy.stats' in sys.modules, 'pandas' in sys.modules]",
         "step:look"),
        ("import pandas as pd\nframe = pd.DataFrame({'a': [1]})", "step:frame"),
        ("from scipy import stats\nn = int(all(seen)) + len(frame)", "step:use"),
        ("n", "pipeline-metrics"),
    )  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "kubelab.client.cli", "run", path.name, "--no-cache",
         "--output", "json"],
        cwd=path.parent, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["metrics"] == {"n": 2.0}


def test_run_notebook_unsavable_value_fails_naming_variable_step_and_cell(make_notebook, tmp_path):
    path = make_notebook(
        ("import threading", "imports"),
        ("x = 1", "step:first"),
        ("lock = threading.Lock()", "step:produce"),
        ("print(lock, x)", "step:consume"),
    )
    result = run_notebook(path, pipeline_root=tmp_path / "out", enable_caching=False)
    assert result.state == "failed"
    log = Path(RunStore().task_info(result.run_id, "produce")["log_path"]).read_text()
    assert "variable 'lock' of step 'produce' (cell 3) cannot be passed" in log
    states = {s["display_name"]: s["state"] for s in result.run()["steps"]}
    assert states["first"] == "succeeded" and states["produce"] == "failed"


def test_run_notebook_rejects_unknown_parameter(make_notebook):
    with pytest.raises(KubelabError, match=r"unknown parameter 'bogus'; valid parameters"):
        run_notebook(make_notebook(*PLAIN), bogus=1)


def test_demo_runs_unchanged_in_a_kernel_with_the_pipelines_metrics():
    """The tags change nothing for Jupyter: the notebook still runs top to bottom, and its
    values equal what the pipeline's isolated steps compute."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(DEMO, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print(forest_accuracy, logreg_accuracy)"))
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(DEMO.parent)}}
    ).execute()
    printed = nb.cells[-1].outputs[0]["text"].split()
    report = validate_notebook(DEMO)
    assert report.ok, report.format_text()
    assert [float(v) for v in printed] == [
        report.metrics["forest_accuracy"],
        report.metrics["logreg_accuracy"],
    ]


FEATURES = [
    ("import math\nimport collections", "imports"),
    ("n = 5\nfactor = 2.0", "pipeline-parameters"),
    ("def scale(v):\n    return v * factor", "functions"),
    (
        "data = list(range(n))\ncounts = collections.Counter()\n"
        "class Acc:\n    def __init__(self):\n        self.total = 0\n"
        "    def add(self, v):\n        self.total += v\nacc = Acc()",
        "step:source",
    ),
    ("for v in data:\n    acc.add(v)\n    counts[v % 2] += 1", "step:fill"),
    ("squares = [scale(v) ** 2 for v in data]\ntmp = sum(squares)\nbig = tmp\ndel tmp",
     "step:squares", "prev:source"),
    ("import statistics\nevens = [v for v in data if v % 2 == 0]\ntotal = 0\n"
     "def bump(k):\n    global total\n    total += k\nfor e in evens:\n    bump(e)",
     "step:evens"),
    ("mean_even = statistics.mean(evens)\nalias = squares\nalias.append(acc.total)\n"
     "result = big + total + counts[1] + len(alias) + math.floor(mean_even)", "step:combine"),
    ("result\nbig\ntotal", "pipeline-metrics"),
]  # fmt: skip


def test_language_features_give_the_kernels_values(make_notebook):
    """Aliasing, mutation through methods and items, a class and functions defined in
    steps, loops, comprehensions, del, global and imports inside steps: the isolated
    steps compute what the notebook computes in one kernel."""
    import nbformat
    from nbclient import NotebookClient

    from kubelab.pipelines.notebook import compile_notebook

    path = make_notebook(*FEATURES)
    nb = compile_notebook(path)
    deps = {s.name: set(s.depends_on) for s in nb.steps}
    assert deps["squares"] == {"source"} and deps["evens"] == {"source"}  # parallel
    assert deps["fill"] == {"source"}
    assert deps["combine"] == {"fill", "squares", "evens"}
    combine = next(s for s in nb.steps if s.name == "combine")
    assert sorted(combine.inputs) == ["acc", "big", "counts", "evens", "squares", "total"]
    assert combine.producers["acc"] == "fill" and combine.producers["counts"] == "fill"

    node = nbformat.read(path, as_version=4)
    node.cells.append(nbformat.v4.new_code_cell("print(result, big, total)"))
    NotebookClient(node, timeout=60, kernel_name="python3").execute()
    kernel = [float(v) for v in node.cells[-1].outputs[0]["text"].split()]
    report = validate_notebook(path)
    assert report.ok, report.format_text()
    assert [report.metrics[k] for k in ("result", "big", "total")] == kernel
