"""The sidebar with Kubeflow Pipelines as the default backend: a real JupyterLab and
headless Chromium, KFP 2.17's contract stub (tests/kfp_contract) as the server."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from conftest import running_lab
from lab_helpers import code, new_notebook, open_notebook_with_sidebar

pytestmark = pytest.mark.ui
UI = "https://kubeflow.example.com/pipeline"
STUB = Path(__file__).parents[1] / "tests" / "kfp_contract" / "kfp_stub.py"


def load_stub_module():
    spec = importlib.util.spec_from_file_location("kfp_stub_ui", STUB)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kfp_stub() -> Iterator[object]:
    stub = load_stub_module().KfpStub(multi_user=False).start()
    yield stub
    stub.stop()
    assert stub.problems == []


@pytest.fixture(scope="module")
def kfp_lab(tmp_path_factory: pytest.TempPathFactory, kfp_stub) -> Iterator[object]:
    options = (
        f"--KubelabApp.kfp_endpoint={kfp_stub.url}",
        f"--KubelabApp.kfp_ui_url={UI}",
        "--KubelabApp.default_backend=kubernetes",
    )
    with running_lab(tmp_path_factory.mktemp("kfp-lab"), *options) as server:
        yield server


def test_a_kfp_run_in_the_sidebar(page, kfp_lab, kfp_stub, output_dir) -> None:
    notebook = new_notebook(
        code("rows = 4", "pipeline-parameters"),
        code("data = list(range(rows))", "step:prep"),
        code("model = sum(data)", "step:fit"),
    )
    nbformat.write(notebook, kfp_lab.root_dir / "kfp.ipynb")
    open_notebook_with_sidebar(page, kfp_lab, "kfp.ipynb")
    sidebar = page.locator("#kubelab-sidebar")
    sidebar.locator("[data-testid=kubelab-step-fit]").wait_for()

    sidebar.locator("[data-testid=kubelab-run-button]").click()
    sidebar.locator("[data-testid=kubelab-run-backend]").wait_for()
    (run_id,) = list(kfp_stub.runs)
    assert sidebar.locator("[data-testid=kubelab-run-backend]").inner_text() == "KFP"
    link = sidebar.locator("[data-testid=kubelab-run-link]")
    assert link.get_attribute("href") == f"{UI}/#/runs/details/{run_id}"

    # Argo runs it: the sidebar follows KFP's states, the cached step marked as such.
    from kubelab.pipelines.notebook import compile_notebook

    metadata = compile_notebook(kfp_lab.root_dir / "kfp.ipynb").task_metadata()
    task = {meta["step"]: name for name, meta in metadata.items()}
    kfp_stub.simulate_argo(run_id, {task["prep"]: "Cached", task["fit"]: "Running"})
    page.wait_for_selector(
        "#kubelab-sidebar [data-testid=kubelab-step-state-fit][data-state=running]"
    )
    kfp_stub.simulate_argo(run_id, {task["prep"]: "Cached", task["fit"]: "Succeeded"})
    page.wait_for_selector("#kubelab-sidebar [data-testid=kubelab-run-state][data-state=succeeded]")
    status = sidebar.locator("[data-testid=kubelab-step-status-prep]").inner_text()
    assert status.startswith("cached"), status
    status = sidebar.locator("[data-testid=kubelab-step-status-fit]").inner_text()
    assert status.startswith("succeeded"), status
    # "Run from here" needs the local cache: not offered for a KFP run, even finished.
    run_from = sidebar.locator("[data-testid=kubelab-run-from-fit]")
    assert run_from.get_attribute("aria-disabled") == "true"

    # KFP has no log for the step (its pod is gone): the log view links to KFP's UI.
    sidebar.locator("[data-testid=kubelab-logs-fit]").click()
    log_link = page.locator("#kubelab-pipeline-view [data-testid=kubelab-log-link]")
    log_link.wait_for()
    assert log_link.get_attribute("href") == f"{UI}/#/runs/details/{run_id}"
    page.screenshot(path=str(output_dir / "kfp-run.png"))

    # KFP unreachable: the run stays with its last known state, and the sidebar says why.
    kfp_stub.stop()
    sidebar.locator("[data-testid=kubelab-refresh-runs]").click()
    warning = sidebar.locator("[data-testid=kubelab-runs-warning]")
    warning.wait_for()
    assert "cannot reach Kubeflow Pipelines" in warning.inner_text()
    assert (
        sidebar.locator("[data-testid=kubelab-run-state]").get_attribute("data-state")
        == "succeeded"
    )
