"""Notebook -> pipeline from the kubelab sidebar and pipeline view, in a real JupyterLab
and headless Chromium: running, run names, the cache, failures, notifications."""

from __future__ import annotations

import re

import pytest
from lab_helpers import (
    CELLS,
    SIDEBAR,
    code,
    open_in_file_browser,
    open_notebook_with_sidebar,
    run_command,
    screenshots,
    set_theme,
    small_targets,
    write_notebook,
)

pytestmark = pytest.mark.ui

DEMO_STEPS = ["load_data", "train_forest", "train_logreg", "evaluate", "pipeline-metrics"]
VIEW = "#kubelab-pipeline-view"


def open_pipeline_view(page) -> None:
    page.locator(f"{SIDEBAR} [data-testid=kubelab-open-pipeline]").click()
    page.locator(f"{VIEW} [data-testid=kubelab-dag]").wait_for()


def step_status(page, step: str) -> str:
    return page.locator(f"{SIDEBAR} [data-testid=kubelab-step-status-{step}]").inner_text()


def wait_run_state(page, state: str, timeout: float = 180_000) -> None:
    page.wait_for_selector(
        f"{SIDEBAR} [data-testid=kubelab-run-state][data-state={state}]", timeout=timeout
    )


def test_run_demo_notebook_as_pipeline(page, lab_server, output_dir) -> None:
    open_notebook_with_sidebar(page, lab_server, "demo.ipynb")
    sidebar = page.locator(SIDEBAR)
    for step in DEMO_STEPS:
        sidebar.locator(f"[data-testid=kubelab-step-{step}]").wait_for()
    from kubelab.pipelines.notebook import compile_notebook

    default = compile_notebook(lab_server.root_dir / "demo.ipynb").parameters["n_estimators"]
    assert sidebar.locator("[data-testid=kubelab-param-n_estimators]").input_value() == str(
        default["default"]
    )

    # The pipeline view opens beside the notebook: both stay visible.
    open_pipeline_view(page)
    dag = page.locator(f"{VIEW} [data-testid=kubelab-dag]")
    for step in DEMO_STEPS:
        assert dag.locator(f"[data-testid=kubelab-dag-node-{step}]").count() == 1
    # The two models train in parallel: both hang off load_data.
    for model in ("train_forest", "train_logreg"):
        assert dag.locator(f"[data-testid=kubelab-dag-edge-load_data-{model}]").count() == 1
    assert page.locator(f"{CELLS}").first.is_visible()

    sidebar.locator("[data-testid=kubelab-run-button]").click()
    # A running step shows its elapsed time.
    page.wait_for_function(
        "/running · [0-9.]+ (ms|s)/.test(document.querySelector("
        "'#kubelab-sidebar [data-testid=kubelab-step-status-load_data]')?.textContent ?? '')",
        timeout=60_000,
    )
    wait_run_state(page, "succeeded")
    for step in DEMO_STEPS:
        assert dag.locator(f"[data-testid=kubelab-dag-node-{step}]").get_attribute(
            "data-state"
        ) == ("succeeded")
        assert step_status(page, step).startswith("succeeded · ")
    accuracy = float(sidebar.locator("[data-testid=kubelab-metric-forest_accuracy]").inner_text())
    assert 0.5 < accuracy <= 1.0
    first = sidebar.locator("[data-testid=kubelab-run-label]").first.inner_text()
    assert first == "#1"

    # A step's log, from its row in the sidebar: the view shows it with the step's details.
    sidebar.locator("[data-testid=kubelab-logs-train_forest]").click()
    details = page.locator(f"{VIEW} [data-testid=kubelab-step-details]")
    assert details.locator("h3").inner_text() == "train_forest"
    assert "X_train, y_train from load_data" in details.inner_text()
    page.wait_for_function(
        f"document.querySelector('{VIEW} [data-testid=kubelab-log-text]')"
        "?.textContent.includes('task train-forest')"
    )
    page.screenshot(path=str(output_dir / "pipeline-run.png"))
    small = small_targets(page, f"{SIDEBAR}, {VIEW}")
    assert small == [], "\n".join(small)

    # Run from train_logreg: load_data and train_forest come from the cache of #1.
    sidebar.locator("[data-testid=kubelab-run-from-train_logreg]").click()
    page.wait_for_function(
        "document.querySelectorAll('#kubelab-sidebar [data-testid=kubelab-run]').length === 2"
    )
    wait_run_state(page, "succeeded")
    labels = sidebar.locator("[data-testid=kubelab-run-label]").all_inner_texts()
    assert labels == ["#2 · from train_logreg", "#1"]
    # Cached: where from, and how long it took there (what the cache saved).
    assert re.fullmatch(r"cached from #1, [0-9.]+ (ms|s)", step_status(page, "load_data"))
    assert re.fullmatch(r"cached from #1, [0-9.]+ (ms|s)", step_status(page, "train_forest"))
    assert step_status(page, "train_logreg").startswith("succeeded")
    # A cached step says where its result came from, and shows that run's log.
    dag.locator("[data-testid=kubelab-dag-node-load_data]").click()
    assert "reused from #1" in details.locator("[data-testid=kubelab-details-cached]").inner_text()
    assert "load_data in #1" in details.locator("[data-testid=kubelab-step-logs]").inner_text()

    # Re-run (its own icon, not the refresh one) and a run with a parameter changed.
    sidebar.locator("[data-testid=kubelab-rerun]").click()
    page.wait_for_function(
        "document.querySelectorAll('#kubelab-sidebar [data-testid=kubelab-run]').length === 3"
    )
    wait_run_state(page, "succeeded")
    sidebar.locator("[data-testid=kubelab-param-n_estimators]").fill("7")
    sidebar.locator("[data-testid=kubelab-run-button]").click()
    page.wait_for_function(
        "document.querySelectorAll('#kubelab-sidebar [data-testid=kubelab-run]').length === 4"
    )
    wait_run_state(page, "succeeded")
    labels = sidebar.locator("[data-testid=kubelab-run-label]").all_inner_texts()
    assert labels == ["#4 · n_estimators=7", "#3 · re-run of #2", "#2 · from train_logreg", "#1"]
    assert step_status(page, "train_forest").startswith("succeeded")  # new parameter
    refresh = sidebar.locator("[data-testid=kubelab-refresh-runs] svg").inner_html()
    rerun = sidebar.locator("[data-testid=kubelab-rerun] svg").inner_html()
    assert refresh != rerun

    # The view's run picker follows the selection, and the log follows the run.
    picker = page.locator(f"{VIEW} [data-testid=kubelab-view-run-select]")
    assert "#4 · n_estimators=7" in picker.locator("option:checked").inner_text()
    dag.locator("[data-testid=kubelab-dag-node-train_forest]").click()
    logs = details.locator("[data-testid=kubelab-step-logs]")
    assert "train_forest in #4 · n_estimators=7" in logs.inner_text()
    picker.select_option(label="#1 (succeeded)")
    page.wait_for_function(
        f"document.querySelector('{VIEW} [data-testid=kubelab-step-logs]')"
        "?.textContent.includes('train_forest in #1')"
    )
    assert sidebar.locator("[data-testid=kubelab-steps-run]").inner_text() == "in #1"
    screenshots(page, output_dir, "pipeline-runs")


def test_select_an_older_run_and_run_with_the_keyboard_only(page, lab_server, output_dir) -> None:
    write_notebook(
        lab_server,
        "keys.ipynb",
        code("n = 2", "pipeline-parameters"),
        code("x = list(range(n))", "step:make"),
        code("total = sum(x)\nprint('total', total)", "step:add"),
    )
    open_notebook_with_sidebar(page, lab_server, "keys.ipynb")
    page.locator(f"{SIDEBAR} [data-testid=kubelab-step-add]").wait_for()

    # Palette (Ctrl+Shift+C) -> "Open kubelab Sidebar": the focus lands on Run as pipeline.
    for number in (1, 2):
        run_command(page, "Open kubelab Sidebar")
        page.wait_for_function("document.activeElement?.dataset.testid === 'kubelab-run-button'")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "document.querySelectorAll('#kubelab-sidebar [data-testid=kubelab-run]').length"
            f" === {number}"
        )
        wait_run_state(page, "succeeded", timeout=60_000)

    # Tab to the runs list (one stop), arrow down to the older run, Enter selects it.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.getAttribute('role') === 'option'"):
            break
    else:
        raise AssertionError("Tab never reached the runs list")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    older = page.locator(f"{SIDEBAR} [data-testid=kubelab-run][aria-selected=true]")
    assert older.locator("[data-testid=kubelab-run-label]").inner_text() == "#1"
    assert page.locator(f"{SIDEBAR} [data-testid=kubelab-steps-run]").inner_text() == "in #1"
    assert page.locator(f"{SIDEBAR} [data-testid=kubelab-run-state]").get_attribute(
        "data-state"
    ) == ("succeeded")

    # The Run as pipeline command from the palette runs the notebook too.
    run_command(page, "Run as Pipeline")
    page.wait_for_function(
        "document.querySelectorAll('#kubelab-sidebar [data-testid=kubelab-run]').length === 3"
    )
    page.screenshot(path=str(output_dir / "keyboard-runs.png"))


def test_tag_a_cell_from_the_sidebar(page, lab_server, output_dir) -> None:
    write_notebook(
        lab_server,
        "tagging.ipynb",
        code("x = 1", "step:first"),
        code("y = x + 1"),
        code("print(y)"),
    )
    open_notebook_with_sidebar(page, lab_server, "tagging.ipynb")
    sidebar = page.locator(SIDEBAR)
    sidebar.locator("[data-testid=kubelab-step-first]").wait_for()
    assert sidebar.locator("[data-testid=kubelab-steps] > li").count() == 1

    from lab_helpers import select_cell

    select_cell(page, 1)
    editor = sidebar.locator("[data-testid=kubelab-cell-editor]")
    assert editor.locator("[data-testid=kubelab-cell-title]").inner_text() == "Cell 2"
    role = page.get_by_label("Role")
    assert role.locator("option:checked").inner_text() == "Part of step first"
    role.select_option("step")
    name = page.get_by_label("Step name")
    name.fill("second")
    name.press("Enter")
    # Placeholders read as examples, not values.
    assert page.get_by_label("CPU").get_attribute("placeholder") == "e.g. 2 or 500m"
    assert page.get_by_label("GPUs").get_attribute("placeholder") == "e.g. 1"
    page.get_by_label("CPU").fill("2")
    page.get_by_label("CPU").press("Enter")
    page.get_by_label("GPUs").fill("1")
    page.get_by_label("GPUs").press("Enter")
    expected = "tags: step:second, limit:cpu:2, limit:nvidia.com/gpu:1"
    page.wait_for_function(
        "document.querySelector('#kubelab-sidebar [data-testid=kubelab-cell-tags]')"
        f".textContent === {expected!r}"
    )
    # Recompiled from the edited (unsaved) notebook: a new step; the analysis found
    # that it needs x from first, shown read-only.
    sidebar.locator("[data-testid=kubelab-step-second]").wait_for()
    page.wait_for_function(
        "document.querySelector('#kubelab-sidebar [data-testid=kubelab-cell-found]')"
        "?.textContent === 'x from first'"
    )
    # `prev:` offers no step already needed for data, and none that comes later.
    assert sidebar.locator("[data-testid=kubelab-cell-prev] input").count() == 0

    # Skip the last cell, then save: the tags are in the file, as Kale writes them.
    select_cell(page, 2)
    page.get_by_label("Role").select_option("skip")
    page.wait_for_function(
        "document.querySelector('#kubelab-sidebar [data-testid=kubelab-cell-tags]')"
        ".textContent === 'tags: skip'"
    )
    from lab_helpers import save_notebook

    saved = save_notebook(page, lab_server, "tagging.ipynb", lambda tags: tags[2] == ["skip"])
    page.wait_for_function(
        "document.querySelector('#kubelab-sidebar [data-testid=kubelab-step-status-second]')"
        "?.parentElement.textContent.endsWith('cell 2')"
    )
    assert saved == [
        ["step:first"],
        ["step:second", "limit:cpu:2", "limit:nvidia.com/gpu:1"],
        ["skip"],
    ]
    page.screenshot(path=str(output_dir / "cell-tags.png"))


def test_compile_error_is_shown_on_the_cell_and_cleared(page, lab_server, output_dir) -> None:
    write_notebook(
        lab_server,
        "broken.ipynb",
        code("a = 1", "step:first"),
        code("b = a + 1", "step:second", "prev:nowhere"),
    )
    open_notebook_with_sidebar(page, lab_server, "broken.ipynb", theme="JupyterLab Dark")
    sidebar = page.locator(SIDEBAR)
    error = sidebar.locator("[data-testid=kubelab-compile-error]")
    error.wait_for()
    assert "nowhere" in error.inner_text()
    # Cells are counted as JupyterLab counts them: the second cell is cell 2.
    assert "cell 2" in error.inner_text()
    assert sidebar.locator("[data-testid=kubelab-compile-error-cell]").inner_text() == (
        "Go to cell 2"
    )
    cells = page.locator(CELLS)
    page.wait_for_selector(".jp-Cell.jp-kubelab-cell-error")
    assert re.search(r"jp-kubelab-cell-error", cells.nth(1).get_attribute("class") or "")
    assert "jp-kubelab-cell-error" not in (cells.nth(0).get_attribute("class") or "")
    assert sidebar.locator("[data-testid=kubelab-run-button]").is_disabled()
    page.screenshot(path=str(output_dir / "compile-error-dark.png"))

    # Go to the cell, then fix it from the sidebar: drop the bad dependency.
    sidebar.locator("[data-testid=kubelab-compile-error-cell]").click()
    page.wait_for_function(
        f"document.querySelectorAll({CELLS!r})[1].classList.contains('jp-mod-active')"
    )
    # (click, not uncheck: once fixed, the unknown step leaves the list of choices)
    sidebar.locator("[data-testid=kubelab-cell-prev-nowhere]").click()
    sidebar.locator("[data-testid=kubelab-step-second]").wait_for()
    assert error.count() == 0
    assert page.locator(".jp-Cell.jp-kubelab-cell-error").count() == 0
    assert sidebar.locator("[data-testid=kubelab-run-button]").is_enabled()
    set_theme(page, "JupyterLab Light")


FAILING = (
    code("import math", "imports"),
    code("def ratio(a, b):\n    return a / b", "functions"),
    code("values = [1, 2, 3]\nprint('loaded', values)", "step:load"),
    code("total = sum(values)\nprint('total', total)\nmean = ratio(total, 0)", "step:summarize"),
)


def test_a_failed_step_reads_as_one_line_with_its_cell_and_log(
    page, lab_server, output_dir
) -> None:
    write_notebook(lab_server, "fails.ipynb", *FAILING)
    open_notebook_with_sidebar(page, lab_server, "fails.ipynb")
    sidebar = page.locator(SIDEBAR)
    sidebar.locator("[data-testid=kubelab-step-summarize]").wait_for()
    sidebar.locator("[data-testid=kubelab-run-button]").click()
    failure = sidebar.locator("[data-testid=kubelab-failure-summarize]")
    failure.wait_for(timeout=60_000)
    assert failure.locator(".jp-kubelab-failure-text").inner_text() == (
        "summarize failed in cell 4, line 3: ZeroDivisionError: division by zero"
    )
    page.screenshot(path=str(output_dir / "step-failed.png"))

    # Go to cell: the notebook's 4th cell becomes the active one.
    failure.locator("[data-testid=kubelab-failure-cell-summarize]").click()
    page.wait_for_function(
        f"document.querySelectorAll({CELLS!r})[3].classList.contains('jp-mod-active')"
    )

    # Show log: the pipeline view, with the step's log starting at the user's frames.
    failure.locator("[data-testid=kubelab-failure-log-summarize]").click()
    log = page.locator(f"{VIEW} [data-testid=kubelab-log-text]")
    page.wait_for_function(
        f"document.querySelector('{VIEW} [data-testid=kubelab-log-text]')"
        "?.textContent.includes('ZeroDivisionError: division by zero')"
    )
    visible = log.inner_text()
    assert "kubelab frames" in visible  # folded
    assert 'File "<notebook cell 4, step summarize>", line 3' in visible
    assert 'File "<notebook cell 2, step summarize>", line 2' in visible
    assert "forkserver.py" not in visible and "executor.py" not in visible
    everything = log.text_content() or ""
    for server_path in (str(lab_server.root_dir), "/site-packages/", "/work/", "/tmp/"):
        assert server_path not in everything
    # Lines wrap at spaces; a word is only broken when it alone is too long.
    styles = log.locator("pre").first.evaluate(
        "e => [getComputedStyle(e).whiteSpace, getComputedStyle(e).wordBreak]"
    )
    assert styles == ["pre-wrap", "normal"]
    screenshots(page, output_dir, "step-failed-log")


def test_a_run_that_finishes_out_of_sight_notifies(page, lab_server, output_dir) -> None:
    write_notebook(
        lab_server,
        "slow.ipynb",
        code("import time", "imports"),
        code("time.sleep(4)\nx = 1", "step:wait"),
    )
    write_notebook(lab_server, "other.ipynb", code("y = 2"))
    open_notebook_with_sidebar(page, lab_server, "slow.ipynb")
    page.locator(f"{SIDEBAR} [data-testid=kubelab-step-wait]").wait_for()
    page.locator(f"{SIDEBAR} [data-testid=kubelab-run-button]").click()
    page.wait_for_selector(f"{SIDEBAR} [data-testid=kubelab-run-state][data-state=running]")
    # Another notebook becomes the active one while the run goes on.
    open_in_file_browser(page, "other.ipynb")
    toast = page.locator(".Toastify__toast", has_text="slow.ipynb: #1 succeeded")
    toast.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)  # the toast slides in
    page.screenshot(path=str(output_dir / "run-notification.png"))
    # Its action brings the notebook and the run back.
    toast.get_by_role("button", name="Show run").click()
    page.wait_for_function(
        "document.querySelector('.jp-kubelab-notebook-name')?.textContent === 'slow.ipynb'"
    )
    page.wait_for_selector(f"{SIDEBAR} [data-testid=kubelab-run-state][data-state=succeeded]")
