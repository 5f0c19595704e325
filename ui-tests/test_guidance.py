"""Guidance for a new user: the empty state, the guide and example, commands, the launcher."""

from __future__ import annotations

import pytest
from lab_helpers import (
    CELLS,
    SIDEBAR,
    code,
    open_notebook_with_sidebar,
    open_palette,
    read_tags,
    save_notebook,
    screenshots,
    write_notebook,
)

pytestmark = pytest.mark.ui


def test_a_notebook_without_steps_shows_how_to_start(page, lab_server, output_dir) -> None:
    write_notebook(lab_server, "plain.ipynb", code("x = 1"), code("y = x + 1"))
    open_notebook_with_sidebar(page, lab_server, "plain.ipynb")
    sidebar = page.locator(SIDEBAR)
    empty = sidebar.locator("[data-testid=kubelab-empty-state]")
    empty.wait_for()
    # Neutral: no error, nothing red, nothing announced as an alert.
    assert sidebar.locator("[data-testid=kubelab-compile-error]").count() == 0
    assert sidebar.locator("[role=alert]").count() == 0
    assert page.locator(".jp-Cell.jp-kubelab-cell-error").count() == 0
    assert empty.locator("li").count() == 3
    assert sidebar.locator("[data-testid=kubelab-run-button]").is_disabled()
    # The cell editor comes right after it (the empty runs section steps aside).
    cell_title = sidebar.locator(".jp-AccordionPanel-title", has_text="Active cell")
    assert cell_title.bounding_box()["y"] < 480
    screenshots(page, output_dir, "empty-state")

    # Make this cell a step: the first cell becomes step1, the notebook a pipeline.
    page.locator(CELLS).first.locator(".jp-InputPrompt").click()
    empty.get_by_role("button", name="Make this cell a step").click()
    sidebar.locator("[data-testid=kubelab-step-step1]").wait_for()
    assert empty.count() == 0
    assert sidebar.locator("[data-testid=kubelab-run-button]").is_enabled()
    save_notebook(page, lab_server, "plain.ipynb", lambda tags: tags[0] == ["step:step1"])
    assert read_tags(lab_server, "plain.ipynb")[1] == []


def test_guide_example_launcher_and_palette(page, lab_server, output_dir) -> None:
    write_notebook(lab_server, "start.ipynb", code("x = 1"))
    open_notebook_with_sidebar(page, lab_server, "start.ipynb")
    page.locator(f"{SIDEBAR} [data-testid=kubelab-open-guide]").click()
    guide = page.locator("[data-testid=kubelab-guide]")
    guide.wait_for()
    assert "step:NAME" in guide.inner_text()
    page.screenshot(path=str(output_dir / "guide.png"))

    # The guide's example: a new notebook, tagged, that runs as a pipeline.
    guide.get_by_role("button", name="Create an example notebook").click()
    page.wait_for_function(
        "document.querySelector('.jp-kubelab-notebook-name')?.textContent.startsWith('Untitled')"
    )
    for step in ("make_data", "mean", "spread", "report"):
        page.locator(f"{SIDEBAR} [data-testid=kubelab-step-{step}]").wait_for()
    page.locator(f"{SIDEBAR} [data-testid=kubelab-run-button]").click()
    page.wait_for_selector(
        f"{SIDEBAR} [data-testid=kubelab-run-state][data-state=succeeded]", timeout=60_000
    )
    assert page.locator(f"{SIDEBAR} [data-testid=kubelab-metric-ratio]").inner_text()

    # The launcher has a kubelab section with the guide and the example.
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-addButton").first.click()
    launcher = page.locator(".jp-Launcher-section", has_text="kubelab")
    launcher.wait_for()
    tiles = launcher.locator(".jp-LauncherCard-label").all_inner_texts()
    assert [t.strip() for t in tiles] == ["Pipelines Guide", "New Example Pipeline Notebook"]

    # Every sidebar action is a palette command too.
    open_palette(page).fill("kubelab")
    page.locator(".lm-CommandPalette-item", has_text="Run as Pipeline").wait_for()
    labels = set(page.locator(".lm-CommandPalette-itemLabel").all_inner_texts())
    assert {
        "Run as Pipeline",
        "Open Pipeline View",
        "Validate Pipeline",
        "Make This Cell a Step",
        "Open kubelab Sidebar",
        "Refresh Runs",
        "Show Step Labels on Cells",
        "Pipelines Guide",
    } <= labels
    page.keyboard.press("Escape")
