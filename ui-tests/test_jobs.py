"""The Jobs section and the job views in a real JupyterLab and headless Chromium:
training a notebook from the sidebar (issue 12), tuning one (issue 13), serving a
model a run made (issue 14)."""

from __future__ import annotations

import re

import pytest
from lab_helpers import SIDEBAR, open_notebook_with_sidebar, screenshots

pytestmark = pytest.mark.ui

JOBS = f"{SIDEBAR} #kubelab-jobs-section"
JOB_VIEW = ".jp-kubelab-job-view:not(.lm-mod-hidden)"


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
