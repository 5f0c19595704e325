"""A `skip` cell skips only itself: the untagged cells after it continue the step before
it, as in Kale (issue: such cells were silently dropped with the skip cell)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kernel_reference import run_all_in_kernel

from kubelab.pipelines.notebook import compile_notebook

# One step, `clean`, cut in three by two skip cells (a plot, a debug print); the cells
# after each skip cell fill missing values, exactly what Kale's Titanic example does.
CELLS = [
    ("import statistics", "imports"),
    ("ages = [22.0, None, 35.0, None, 54.0]\nfares = [7.25, 71.3, None, 8.05, 51.9]", "step:load"),
    ("known = [a for a in ages if a is not None]", "step:clean"),
    ("print('a plot would go here', len(known))", "skip"),
    ("median_age = statistics.median(known)\nages = [median_age if a is None else a for a in ages]",),
    ("print('debugging', ages)", "skip"),
    ("fares = [0.0 if f is None else f for f in fares]",),
    ("mean_age = statistics.mean(ages)\ntotal_fare = sum(fares)", "step:summarize"),
    ("mean_age\ntotal_fare", "pipeline-metrics"),
]  # fmt: skip


def test_untagged_cells_after_skip_cells_stay_in_their_step(make_notebook) -> None:
    path = make_notebook(*CELLS, name="skips.ipynb")
    pipeline = compile_notebook(path)
    cells = {s.name: s.cells for s in pipeline.steps}
    # Cells 4 and 6 (after the skip cells 3 and 5) belong to `clean`, on both sides.
    assert cells == {"load": [1], "clean": [2, 4, 6], "summarize": [7], "pipeline-metrics": [8]}
    summarize = next(s for s in pipeline.steps if s.name == "summarize")
    assert summarize.producers == {"ages": "clean", "fares": "clean"}
    # What the labels on the cells show: the cells after a skip cell are `clean`'s.
    roles = {c["index"]: (c["role"], c["step"]) for c in pipeline.to_json()["cells"]}
    assert [roles[i] for i in (2, 3, 4, 5, 6)] == [
        ("step", "clean"),
        ("skip", None),
        ("step", "clean"),
        ("skip", None),
        ("step", "clean"),
    ]

    reference = run_all_in_kernel(path, ["mean_age", "total_fare"])
    result = subprocess.run(
        [sys.executable, "-m", "kubelab.client.cli", "run", str(path), "--output", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=path.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["state"] == "succeeded"
    assert summary["metrics"] == reference  # 36.5 (the median filled in) and 138.5


def test_a_notebook_that_starts_with_skip_cells_names_the_untagged_cell(make_notebook) -> None:
    import pytest

    from kubelab.pipelines.errors import KubelabError

    path = make_notebook(("print('setup')", "skip"), ("x = 1",), ("y = x", "step:a"))
    with pytest.raises(
        KubelabError, match=r"cell 2 has no tag and no step comes before it"
    ) as info:
        compile_notebook(Path(path))
    assert info.value.details["cell"] == 1  # the index of the 2nd cell
