"""Notebook -> pipeline from the kubelab sidebar, in a real JupyterLab and headless Chromium."""

from __future__ import annotations

import json
import re
import urllib.request

import nbformat
import pytest

pytestmark = pytest.mark.ui


def lab_api(lab_server, method: str, path: str, body: object = None) -> object:
    request = urllib.request.Request(
        f"{lab_server.url}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {lab_server.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture(autouse=True)
def shut_down_kernels(lab_server):
    """Kernels our notebooks started would make later tests' notebooks ask which to use."""
    yield
    for session in lab_api(lab_server, "GET", "api/sessions"):
        lab_api(lab_server, "DELETE", f"api/sessions/{session['id']}")


DEMO_STEPS = ["load_data", "train_forest", "train_logreg", "evaluate", "pipeline-metrics"]


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def new_notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=list(cells))
    # With a kernelspec JupyterLab starts the kernel instead of asking which one.
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    return notebook


def set_theme(page, theme: str) -> None:
    """Settings > Theme > `theme` (persisted in the session's settings: set it back)."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{theme}$")).click()
    dark = "true" if "Dark" in theme else "false"
    page.wait_for_function(
        f"document.body.dataset.jpThemeLight === '{'false' if dark == 'true' else 'true'}'"
    )


def open_notebook_with_sidebar(page, lab_server, name: str, theme: str | None = None) -> None:
    # A workspace of its own, reset: other tests' open tabs and sidebars stay untouched.
    workspace = "kubelab-" + name.removesuffix(".ipynb")
    url = lab_server.lab_url(f"lab/workspaces/{workspace}/tree/{name}") + "&reset"
    page.goto(url)
    page.wait_for_selector(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell", state="visible", timeout=60_000
    )
    if theme:
        set_theme(page, theme)
    # The layout is restored by now; a click on the tab would close a sidebar left open.
    if not page.locator("#kubelab-sidebar").is_visible():
        page.locator(".jp-SideBar .lm-TabBar-tab[data-id='kubelab-sidebar']").click()
    page.wait_for_selector("#kubelab-sidebar", state="visible")
    assert page.locator(".jp-kubelab-notebook-name").inner_text() == name


def select_cell(page, index: int) -> None:
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputPrompt").click()
    page.wait_for_function(
        f"document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')[{index}]"
        ".classList.contains('jp-mod-active')"
    )


def test_run_demo_notebook_as_pipeline(page, lab_server, output_dir) -> None:
    open_notebook_with_sidebar(page, lab_server, "demo.ipynb")
    sidebar = page.locator("#kubelab-sidebar")
    dag = sidebar.locator("[data-testid=kubelab-dag]")
    dag.wait_for()
    for step in DEMO_STEPS:
        assert dag.locator(f"[data-testid=kubelab-dag-node-{step}]").count() == 1
    # The two models train in parallel: both hang off load_data.
    for model in ("train_forest", "train_logreg"):
        edge = dag.locator(f"[data-testid=kubelab-dag-edge-load_data-{model}]")
        assert edge.count() == 1
    from kubelab.pipelines.notebook import compile_notebook

    default = compile_notebook(lab_server.root_dir / "demo.ipynb").parameters["n_estimators"]
    assert sidebar.locator("[data-testid=kubelab-param-n_estimators]").input_value() == str(
        default["default"]
    )

    sidebar.locator("[data-testid=kubelab-run-button]").click()
    for step in DEMO_STEPS:
        page.wait_for_selector(
            f"#kubelab-sidebar [data-testid=kubelab-step-state-{step}][data-state=succeeded]",
            timeout=180_000,
        )
    page.wait_for_selector("#kubelab-sidebar [data-testid=kubelab-run-state][data-state=succeeded]")
    for step in DEMO_STEPS:
        node = dag.locator(f"[data-testid=kubelab-dag-node-{step}]")
        assert node.get_attribute("data-state") == "succeeded"
    accuracy = float(sidebar.locator("[data-testid=kubelab-metric-forest_accuracy]").inner_text())
    assert 0.5 < accuracy <= 1.0

    # The log of a finished step.
    sidebar.locator("[data-testid=kubelab-logs-train_forest]").click()
    log = sidebar.locator("[data-testid=kubelab-log-text]")
    log.wait_for()
    page.wait_for_function(
        "document.querySelector('#kubelab-sidebar [data-testid=kubelab-log-text]')"
        ".textContent.length > 0"
    )
    log.scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "pipeline-run-logs.png"))
    dag.scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "pipeline-run.png"))

    # Run from train_logreg: load_data and train_forest come from the cache.
    runs_before = sidebar.locator("[data-testid=kubelab-run]").count()
    sidebar.locator("[data-testid=kubelab-run-from-train_logreg]").click()
    page.wait_for_function(
        f"document.querySelectorAll('#kubelab-sidebar [data-testid=kubelab-run]').length"
        f" > {runs_before}"
    )
    page.wait_for_selector(
        "#kubelab-sidebar [data-testid=kubelab-run-state][data-state=succeeded]",
        timeout=180_000,
    )
    assert sidebar.locator("[data-testid=kubelab-step-cached-load_data]").count() == 1
    assert sidebar.locator("[data-testid=kubelab-step-cached-train_forest]").count() == 1
    assert sidebar.locator("[data-testid=kubelab-step-cached-train_logreg]").count() == 0


def test_tag_a_cell_from_the_sidebar(page, lab_server, output_dir) -> None:
    notebook = new_notebook(code("x = 1", "step:first"), code("y = x + 1"), code("print(y)"))
    path = lab_server.root_dir / "tagging.ipynb"
    nbformat.write(notebook, path)
    open_notebook_with_sidebar(page, lab_server, "tagging.ipynb")
    sidebar = page.locator("#kubelab-sidebar")
    sidebar.locator("[data-testid=kubelab-dag-node-first]").wait_for()
    assert sidebar.locator("[data-testid=kubelab-dag] g").count() == 1

    select_cell(page, 1)
    editor = sidebar.locator("[data-testid=kubelab-cell-editor]")
    assert "Cell [1]" in editor.inner_text()
    editor.locator("[data-testid=kubelab-cell-role]").select_option("step")
    name = editor.locator("[data-testid=kubelab-cell-step-name]")
    name.fill("second")
    name.press("Enter")
    editor.locator("[data-testid=kubelab-cell-cpu]").fill("2")
    editor.locator("[data-testid=kubelab-cell-cpu]").press("Enter")
    editor.locator("[data-testid=kubelab-cell-gpu]").fill("1")
    editor.locator("[data-testid=kubelab-cell-gpu]").press("Enter")
    expected = "tags: step:second, limit:cpu:2, limit:nvidia.com/gpu:1"
    page.wait_for_function(
        "document.querySelector('#kubelab-sidebar [data-testid=kubelab-cell-tags]')"
        f".textContent === {expected!r}"
    )
    # The pipeline is recompiled from the edited (unsaved) notebook: a new step and edge.
    sidebar.locator("[data-testid=kubelab-dag-edge-first-second]").wait_for(state="attached")
    chips = sidebar.locator("[data-testid=kubelab-step-second]").inner_text()
    assert "cpu: 2" in chips and "nvidia.com/gpu: 1" in chips

    # Skip the last cell, then save: the tags are in the file, as Kale writes them.
    select_cell(page, 2)
    editor.locator("[data-testid=kubelab-cell-role]").select_option("skip")
    page.wait_for_function(
        "document.querySelector('#kubelab-sidebar [data-testid=kubelab-cell-tags]')"
        ".textContent === 'tags: skip'"
    )
    page.keyboard.press("Control+s")
    saved = None
    for _ in range(50):
        saved = nbformat.read(path, as_version=4)
        if saved.cells[2].metadata.get("tags") == ["skip"]:
            break
        page.wait_for_timeout(200)
    assert saved is not None
    assert saved.cells[0].metadata["tags"] == ["step:first"]
    assert saved.cells[1].metadata["tags"] == [
        "step:second",
        "limit:cpu:2",
        "limit:nvidia.com/gpu:1",
    ]
    assert saved.cells[2].metadata["tags"] == ["skip"]
    page.screenshot(path=str(output_dir / "cell-tags.png"))


def test_compile_error_is_shown_on_the_cell_and_cleared(page, lab_server, output_dir) -> None:
    notebook = new_notebook(
        code("a = 1", "step:first"), code("b = a + 1", "step:second", "prev:nowhere")
    )
    nbformat.write(notebook, lab_server.root_dir / "broken.ipynb")
    open_notebook_with_sidebar(page, lab_server, "broken.ipynb", theme="JupyterLab Dark")
    sidebar = page.locator("#kubelab-sidebar")
    error = sidebar.locator("[data-testid=kubelab-compile-error]")
    error.wait_for()
    assert "nowhere" in error.inner_text()
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
    page.wait_for_selector(".jp-Cell.jp-kubelab-cell-error")
    assert re.search(r"jp-kubelab-cell-error", cells.nth(1).get_attribute("class") or "")
    assert "jp-kubelab-cell-error" not in (cells.nth(0).get_attribute("class") or "")
    assert sidebar.locator("[data-testid=kubelab-run-button]").is_disabled()
    page.screenshot(path=str(output_dir / "compile-error-dark.png"))

    # Fix it from the sidebar: drop the bad dependency.
    select_cell(page, 1)
    # (click, not uncheck: once fixed, the unknown step leaves the list of choices)
    sidebar.locator("[data-testid=kubelab-cell-prev-nowhere]").click()
    sidebar.locator("[data-testid=kubelab-dag-edge-first-second]").wait_for(state="attached")
    assert error.count() == 0
    assert page.locator(".jp-Cell.jp-kubelab-cell-error").count() == 0
    assert sidebar.locator("[data-testid=kubelab-run-button]").is_enabled()
    set_theme(page, "JupyterLab Light")
