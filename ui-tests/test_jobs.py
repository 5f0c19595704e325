"""The Jobs section and the job views in a real JupyterLab and headless Chromium:
training a notebook from the sidebar (issue 12), tuning one (issue 13), serving a
model a run made (issue 14)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import running_lab
from lab_helpers import SIDEBAR, lab_api, open_notebook_with_sidebar, screenshots

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """A lab of its own: jobs here run the demo notebook, whose steps would otherwise
    be in the cache (and the run history) that other modules' tests start from."""
    with running_lab(tmp_path_factory.mktemp("jobs-lab")) as server:
        yield server


JOBS = f"{SIDEBAR} #kubelab-jobs-section"
JOB_VIEW = ".jp-kubelab-job-view:not(.lm-mod-hidden)"
PIPELINE = "#kubelab-pipeline-view"


def wait_job_state(page, state: str, timeout: float = 240_000) -> None:
    page.wait_for_selector(
        f"{JOB_VIEW} [data-testid=kubelab-job-state][data-state={state}]", timeout=timeout
    )


def test_train_ddp_notebook_from_the_sidebar(page, lab_server, output_dir) -> None:
    open_notebook_with_sidebar(page, lab_server, "train_ddp.ipynb")
    jobs = page.locator(JOBS)
    assert "No jobs yet" in jobs.locator("[data-testid=kubelab-no-jobs]").inner_text()

    page.locator(f"{SIDEBAR} [data-testid=kubelab-jobs-train]").click()
    form = page.locator("[data-testid=kubelab-train-form]")
    form.wait_for()
    assert "train_ddp.ipynb" in form.locator("h2").inner_text()
    # No profile on this server: GPUs are limited to 0, and the form says why.
    assert form.get_by_label("GPUs per node").get_attribute("max") == "0"
    assert "0 GPUs" in form.locator("#kubelab-train-gpus-hint").inner_text()
    # The notebook's pipeline-parameters are the job's parameters.
    epochs = form.get_by_label(re.compile("^epochs"))
    assert epochs.input_value() == "5"

    # More GPUs than allowed: refused next to the field, nothing starts.
    form.get_by_label("GPUs per node").fill("1")
    form.locator("[data-testid=kubelab-train-submit]").click()
    gpu_error = form.locator("[data-testid=kubelab-train-gpus-error]")
    gpu_error.wait_for()
    assert "1 GPU(s) per node asked" in gpu_error.inner_text()
    form.get_by_label("GPUs per node").fill("0")
    # Bad input: the server's message shows next to the field it names.
    form.get_by_label("Nodes").fill("0")
    form.locator("[data-testid=kubelab-train-submit]").click()
    error = form.locator("[data-testid=kubelab-train-nodes-error]")
    error.wait_for()
    assert "num_nodes must be between 1 and 64, got 0" in error.inner_text()

    form.get_by_label("Nodes").fill("2")
    form.get_by_label("Processes per node").fill("1")
    epochs.fill("4")
    form.locator("[data-testid=kubelab-train-submit]").click()

    # The form gives way to the job's view, live until the job completes.
    view = page.locator(JOB_VIEW)
    view.locator("[data-testid=kubelab-training-view]").wait_for()
    assert view.locator("[data-testid=kubelab-job-title]").inner_text() == "train_ddp"
    # Back to the notebook: a notification says when the job is done, and shows it.
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="train_ddp.ipynb").click()
    toast = page.locator(".Toastify__toast", has_text="train_ddp: training job succeeded")
    toast.wait_for(timeout=240_000)
    toast.get_by_role("button", name="Show job").click()
    wait_job_state(page, "succeeded")
    for node in ("node-0", "node-1"):
        row = view.locator(f"[data-testid=kubelab-node-{node}]")
        assert row.get_attribute("data-state") == "succeeded"
        assert "cpu" in row.inner_text()
    # The loss over the 4 epochs, drawn as one line (node-0 reports it).
    chart = view.locator("[data-testid=kubelab-chart-loss]")
    chart.locator("[data-testid=kubelab-chart-line]").wait_for()
    line = chart.locator("[data-testid=kubelab-chart-line]").get_attribute("d")
    assert line.count("L") == 3, line
    assert chart.locator("circle").count() == 4
    # Readable: axis labels at least 11 px.
    size = chart.locator("text").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 11
    # The log of node-0, complete.
    log = view.locator("[data-testid=kubelab-log-text]")
    page.wait_for_function(
        "document.querySelector('.jp-kubelab-job-view:not(.lm-mod-hidden) "
        "[data-testid=kubelab-log-text]')?.textContent.includes('rank 0 of 2 done')"
    )
    assert "rank 0 of 2 done" in log.inner_text()
    # The sidebar's row: state, kind, the last loss.
    row = jobs.locator("[data-testid=kubelab-job][data-kind=training]").first
    assert row.get_attribute("data-state") == "succeeded"
    assert "training" in row.inner_text() and "local" in row.inner_text()
    assert "loss" in row.locator("[data-testid=kubelab-job-summary]").inner_text()
    screenshots(page, output_dir, "jobs-training")

    # Rows are buttons: the keyboard opens the job again (the same view).
    page.locator(f"{JOB_VIEW} [data-testid=kubelab-job-title]").click()
    row.focus()
    page.keyboard.press("Enter")
    assert page.locator(".jp-kubelab-job-view").count() == 1

    # Delete, confirmed: the view closes and the row goes.
    view.locator("[data-testid=kubelab-job-delete]").click()
    page.locator(".jp-Dialog .jp-mod-warn").click()
    page.wait_for_selector(".jp-kubelab-job-view", state="detached")
    jobs.locator("[data-testid=kubelab-no-jobs]").wait_for()


def test_tune_demo_notebook_from_the_sidebar(page, lab_server, output_dir) -> None:
    open_notebook_with_sidebar(page, lab_server, "demo.ipynb")
    page.locator(f"{SIDEBAR} [data-testid=kubelab-jobs-tune]").click()
    form = page.locator("[data-testid=kubelab-tune-form]")
    form.locator("[data-testid=kubelab-space-n_estimators]").wait_for()
    # The objective comes from the notebook's pipeline-metrics; accuracy is maximized.
    assert form.get_by_label("Objective metric").input_value() == "forest_accuracy"
    assert form.get_by_label("Direction").input_value() == "maximize"

    # Nothing chosen to tune: the server's message, on the search space.
    form.locator("[data-testid=kubelab-tune-submit]").click()
    empty = form.locator("[data-testid=kubelab-tune-space-error]")
    empty.wait_for()
    assert "search space is empty" in empty.inner_text()

    # n_estimators: a range prefilled around its value (20).
    form.locator("[data-testid=kubelab-tune-n_estimators-tune]").check()
    n_estimators = form.locator("[data-testid=kubelab-space-n_estimators]")
    assert n_estimators.get_by_label("n_estimators: from").input_value() == "10"
    assert n_estimators.get_by_label("n_estimators: to").input_value() == "40"
    # max_iter as choices, first left empty: refused next to that parameter.
    form.locator("[data-testid=kubelab-tune-max_iter-tune]").check()
    max_iter = form.locator("[data-testid=kubelab-space-max_iter]")
    max_iter.get_by_label("max_iter: Search").select_option("choices")
    max_iter.get_by_label("max_iter: values").fill("")
    form.locator("[data-testid=kubelab-tune-submit]").click()
    row_error = form.locator("[data-testid=kubelab-tune-max_iter-error]")
    row_error.wait_for()
    assert "max_iter" in row_error.inner_text() and "at least one value" in row_error.inner_text()
    max_iter.get_by_label("max_iter: values").fill("100, 500")
    form.get_by_label("Trials", exact=True).fill("8")
    form.get_by_label("Parallel trials").fill("2")
    form.locator("[data-testid=kubelab-tune-submit]").click()

    view = page.locator(JOB_VIEW)
    view.locator("[data-testid=kubelab-tuning-view]").wait_for()
    assert view.locator("[data-testid=kubelab-job-title]").inner_text() == "demo-tune"
    wait_job_state(page, "succeeded")
    trials = view.locator("[data-testid=kubelab-trial]")
    assert trials.count() == 8
    assert "8 succeeded" in view.locator("[data-testid=kubelab-tuning-counts]").inner_text()
    # The best trial is highlighted, and is the one with the highest accuracy.
    best = view.locator("[data-testid=kubelab-trial][data-best=true]")
    assert best.count() == 1 and "jp-kubelab-best" in best.get_attribute("class")
    values = [
        float(v) for v in view.locator("[data-testid=kubelab-trial-objective]").all_inner_texts()
    ]
    assert float(best.locator("[data-testid=kubelab-trial-objective]").inner_text()) == max(values)
    for text in view.locator("[data-testid=kubelab-trial] td:nth-child(2)").all_inner_texts():
        assert 10 <= int(text) <= 40  # n_estimators within its range
    # Sortable: by the metric, ascending then descending.
    view.locator("[data-testid=kubelab-sort-objective]").click()
    ascending = [
        float(v) for v in view.locator("[data-testid=kubelab-trial-objective]").all_inner_texts()
    ]
    assert ascending == sorted(ascending)
    view.locator("[data-testid=kubelab-sort-objective]").click()
    descending = [
        float(v) for v in view.locator("[data-testid=kubelab-trial-objective]").all_inner_texts()
    ]
    assert descending == sorted(ascending, reverse=True)
    assert view.locator("th[aria-sort=descending]").count() == 1
    # The chart: a dot per trial and the best-so-far line.
    chart = view.locator("[data-testid=kubelab-tuning-chart]")
    assert chart.locator("[data-series=forest_accuracy] circle").count() == 8
    assert (
        chart.locator("[data-series='best so far'] [data-testid=kubelab-chart-line]").count() == 1
    )
    # A trial's log: its pipeline run, the cached steps said so.
    page.wait_for_function(
        "document.querySelector('.jp-kubelab-job-view:not(.lm-mod-hidden) "
        "[data-testid=kubelab-log-text]')?.textContent.includes('forest_accuracy')"
    )
    # The sidebar's row: trial counts and the best value.
    row = page.locator(f"{JOBS} [data-testid=kubelab-job][data-kind=tuning]").first
    summary = row.locator("[data-testid=kubelab-job-summary]").inner_text()
    assert "8/8 trials" in summary and "best forest_accuracy" in summary
    screenshots(page, output_dir, "jobs-tuning")


@pytest.fixture
def stop_model_servers(lab_server):
    """Model servers outlive the lab (their own sessions): stop what a test started."""
    yield
    for job in lab_api(lab_server, "GET", "kubelab/api/jobs?kind=serving")["jobs"]:
        if job["state"] in ("pending", "running"):
            lab_api(lab_server, "POST", f"kubelab/api/jobs/{job['id']}/cancel", {})


def test_serve_the_demo_model_from_a_run_and_try_it(
    page, lab_server, output_dir, stop_model_servers
) -> None:
    open_notebook_with_sidebar(page, lab_server, "demo.ipynb")
    sidebar = page.locator(SIDEBAR)
    sidebar.locator("[data-testid=kubelab-run-button]").click()
    page.wait_for_function(
        "document.querySelector('#kubelab-sidebar [data-testid=kubelab-run-state]')"
        "?.dataset.state === 'succeeded'",
        timeout=180_000,
    )
    # The step's outputs in the pipeline view: the forest is a model, with Serve.
    sidebar.locator("[data-testid=kubelab-open-pipeline]").click()
    page.locator(f"{PIPELINE} [data-testid=kubelab-dag-node-train_forest]").click()
    outputs = page.locator(f"{PIPELINE} [data-testid=kubelab-step-outputs]")
    outputs.wait_for()
    forest = outputs.locator("[data-testid=kubelab-output-forest]")
    assert "RandomForestClassifier" in forest.inner_text() and "sklearn" in forest.inner_text()
    forest.locator("[data-testid=kubelab-serve-forest]").click()

    # The server's view: ready, a prefilled v2 request, predictions back.
    view = page.locator(JOB_VIEW)
    view.locator("[data-testid=kubelab-server-view]").wait_for()
    assert view.locator("[data-testid=kubelab-job-title]").inner_text() == "forest"
    wait_job_state(page, "running", timeout=60_000)
    view.locator("[data-testid=kubelab-server-ready][data-ready=true]").wait_for(timeout=60_000)
    assert (
        view.locator("[data-testid=kubelab-server-url]")
        .inner_text()
        .startswith("http://127.0.0.1:")
    )
    request = view.get_by_label(re.compile("^Request to"))
    page.wait_for_function(
        "document.querySelector('[data-testid=kubelab-try-request]')?.value.includes('inputs')"
    )
    body = json.loads(request.input_value())
    (tensor,) = body["inputs"]
    assert tensor["datatype"] == "FP64" or tensor["datatype"].startswith("FP")
    # A real wine: the first row of the data set, class 0.
    from sklearn.datasets import load_wine

    tensor["data"] = load_wine().data[0].tolist()
    tensor["shape"] = [1, len(tensor["data"])]
    request.fill(json.dumps(body))
    view.locator("[data-testid=kubelab-try-send]").click()
    response = view.locator("[data-testid=kubelab-try-response]")
    response.wait_for()
    answer = json.loads(response.inner_text())
    assert answer["model_name"] == "forest"
    assert answer["outputs"][0]["data"] == [0]
    # The request is counted, with its latency.
    page.wait_for_function(
        "/^1 \\(0 errors\\) · latency/.test(document.querySelector("
        "'[data-testid=kubelab-server-stats]')?.textContent ?? '')"
    )
    # A bad request: the model server's 400, shown as it said it.
    request.fill('{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1]}]}')
    view.locator("[data-testid=kubelab-try-send]").click()
    error = view.locator("[data-testid=kubelab-try-error]")
    error.wait_for()
    assert "shape" in error.inner_text()
    # The sidebar's row: a running model server and its URL.
    row = page.locator(f"{JOBS} [data-testid=kubelab-job][data-kind=serving]").first
    assert row.get_attribute("data-state") == "running"
    assert "http://127.0.0.1:" in row.inner_text()
    request.fill(json.dumps(body))
    view.locator("[data-testid=kubelab-try-send]").click()
    response.wait_for()
    screenshots(page, output_dir, "jobs-serving")

    # Where the served model came from: its lineage, back to the step and the run.
    view.locator("[data-testid=kubelab-server-lineage]").click()
    lineage = page.locator(
        ".jp-kubelab-lineage-view:not(.lm-mod-hidden) [data-testid=kubelab-lineage]"
    )
    producer = lineage.locator("[data-testid=kubelab-lineage-producer]")
    producer.wait_for()
    assert producer.inner_text().startswith("step train_forest in run #")
    assert "demo.ipynb" in lineage.locator("[data-testid=kubelab-lineage-source]").inner_text()
    page.screenshot(path=str(output_dir / "jobs-serving-lineage.png"))
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab:has-text('forest (serving)')").click()

    view.locator("[data-testid=kubelab-job-cancel]").click()
    wait_job_state(page, "cancelled", timeout=30_000)
