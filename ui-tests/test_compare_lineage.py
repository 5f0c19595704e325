"""Compare runs and a model's lineage (issue 19), in a real JupyterLab and headless
Chromium: the demo notebook run twice with different parameters, compared from the
sidebar's runs list; the lineage of the forest model from the pipeline view."""

from __future__ import annotations

import shutil

import pytest
from conftest import running_lab
from lab_helpers import (
    SIDEBAR,
    lab_api,
    open_notebook_with_sidebar,
    screenshots,
    small_targets,
)

pytestmark = pytest.mark.ui

NAME = "compare_demo.ipynb"
COMPARE = ".jp-kubelab-compare-view:not(.lm-mod-hidden) [data-testid=kubelab-compare]"
LINEAGE = ".jp-kubelab-lineage-view:not(.lm-mod-hidden) [data-testid=kubelab-lineage]"
VIEW = "#kubelab-pipeline-view"


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """A lab of its own: the demo's runs here would put its steps in the cache (and the
    run history) that other modules' tests start from."""
    with running_lab(tmp_path_factory.mktemp("compare-lab")) as server:
        yield server


def run_and_wait(page, count: int) -> None:
    """Run as pipeline, then wait for the run list to hold `count` runs, newest done."""
    page.locator(f"{SIDEBAR} [data-testid=kubelab-run-button]").click()
    page.wait_for_function(
        f"document.querySelectorAll('{SIDEBAR} [data-testid=kubelab-run]').length === {count}",
        timeout=60_000,
    )
    page.wait_for_selector(
        f"{SIDEBAR} [data-testid=kubelab-run-state][data-state=succeeded]", timeout=180_000
    )


def test_compare_two_runs_of_the_demo_and_open_a_models_lineage(
    page, lab_server, output_dir
) -> None:
    shutil.copy(lab_server.root_dir / "demo.ipynb", lab_server.root_dir / NAME)
    open_notebook_with_sidebar(page, lab_server, NAME)
    sidebar = page.locator(SIDEBAR)
    sidebar.locator("[data-testid=kubelab-step-train_forest]").wait_for()
    run_and_wait(page, 1)
    sidebar.locator("[data-testid=kubelab-param-n_estimators]").fill("5")
    run_and_wait(page, 2)
    labels = sidebar.locator("[data-testid=kubelab-run-label]").all_inner_texts()
    assert labels == ["#2 · n_estimators=5", "#1"]

    # Tick the two runs in the list (Compare waits for two), then Compare.
    compare = sidebar.locator("[data-testid=kubelab-compare-runs]")
    ticks = sidebar.locator("[data-testid=kubelab-run-tick]")
    ticks.nth(0).check()
    assert compare.is_disabled()
    assert sidebar.locator("[data-testid=kubelab-run-label]").count() == 2
    ticks.nth(1).check()
    assert compare.inner_text() == "Compare 2 runs"
    compare.click()

    view = page.locator(COMPARE)
    changed = view.locator("[data-testid=kubelab-compare-parameter-n_estimators]")
    changed.wait_for()
    # Columns oldest first; the changed parameter is marked, the others are not.
    heads = view.locator("[data-testid=kubelab-compare-parameters-table] thead th")
    assert heads.all_inner_texts()[1:] == ["#1", "#2 · n_estimators=5"]
    assert changed.get_attribute("data-changed") == "true"
    assert "changed" in changed.locator("th").inner_text()
    assert changed.locator("td").all_inner_texts() == ["20", "5"]
    assert "jp-kubelab-differs" in (changed.locator("td").nth(1).get_attribute("class") or "")
    same = view.locator("[data-testid=kubelab-compare-parameter-max_iter]")
    assert same.get_attribute("data-changed") == "false"
    assert "changed" not in same.locator("th").inner_text()

    # A metric shows both runs' values, as the runs recorded them.
    recorded = {
        r["label"]: r["metrics"]
        for r in lab_api(lab_server, "GET", "kubelab/api/runs")["runs"]
        if r["path"] == NAME
    }
    metric = view.locator("[data-testid=kubelab-compare-metric-forest_accuracy]")
    values = [float(v) for v in metric.locator("td").all_inner_texts()]
    assert values == pytest.approx(
        [recorded["#1"]["forest_accuracy"], recorded["#2 · n_estimators=5"]["forest_accuracy"]],
        abs=1e-4,
    )
    assert view.locator("[data-testid=kubelab-chart]").count() == 2  # one per metric
    # Which steps were cached, which changed and why (#1 may reuse other tests' cache).
    load = view.locator("[data-testid=kubelab-compare-step-load_data]").locator("td")
    assert "cached" in load.nth(1).inner_text()
    forest = view.locator("[data-testid=kubelab-compare-step-train_forest]")
    assert forest.get_attribute("data-changed") == "true"
    assert "(parameters)" in forest.locator("th").inner_text()
    assert "cached" not in forest.locator("td").nth(1).inner_text()
    small = small_targets(page, f"{SIDEBAR}, .jp-kubelab-compare-view")
    assert small == [], "\n".join(small)
    screenshots(page, output_dir, "compare-runs")
    view.locator("[data-testid=kubelab-compare-steps]").scroll_into_view_if_needed()
    screenshots(page, output_dir, "compare-runs-steps")

    # The forest model of #2: its step's outputs in the pipeline view lead to its lineage.
    sidebar.locator("[data-testid=kubelab-run]").first.click()
    sidebar.locator("[data-testid=kubelab-open-pipeline]").click()
    page.locator(f"{VIEW} [data-testid=kubelab-dag-node-train_forest]").click()
    details = page.locator(f"{VIEW} [data-testid=kubelab-step-details]")
    assert details.locator("h3").inner_text() == "train_forest"
    details.locator("[data-testid=kubelab-lineage-forest]").click()

    lineage = page.locator(LINEAGE)
    producer = lineage.locator("[data-testid=kubelab-lineage-producer]")
    producer.wait_for()
    assert producer.inner_text() == "step train_forest in run #2 · n_estimators=5"
    parameters = lineage.locator("[data-testid=kubelab-lineage-parameters] li")
    assert "n_estimators = 5 (used by this step)" in parameters.all_inner_texts()
    assert NAME in lineage.locator("[data-testid=kubelab-lineage-source]").inner_text()
    inputs = lineage.locator("[data-testid=kubelab-lineage-inputs]").inner_text()
    # load_data was cached in #2: the data came from #1's execution of it.
    assert "X_train from load_data in #1" in inputs
    # The graph: the model, its step, the step's inputs, back to the notebook snapshot.
    graph = lineage.locator("[data-testid=kubelab-dag]")
    nodes = graph.locator(".jp-kubelab-dag-node .jp-kubelab-dag-name").evaluate_all(
        "names => names.map(n => n.textContent)"
    )
    for expected in ("forest", "train_forest", "X_train", "load_data", NAME):
        assert expected in nodes, nodes
    assert "parameters of #2" in nodes
    screenshots(page, output_dir, "lineage")
