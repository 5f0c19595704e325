"""The Active-cell tag editor acts on the active notebook's active cell, and the
sidebar survives a page reload."""

from __future__ import annotations

import pytest
from lab_helpers import (
    CELLS,
    SIDEBAR,
    code,
    lab_api,
    open_in_file_browser,
    open_notebook_with_sidebar,
    read_tags,
    save_notebook,
    select_cell,
    show_sidebar,
    write_notebook,
)

pytestmark = pytest.mark.ui


def rename_step(page, name: str) -> None:
    field = page.locator(f"{SIDEBAR} [data-testid=kubelab-cell-step-name]")
    field.fill(name)
    field.press("Enter")


def step_name_field(page):
    return page.locator(f"{SIDEBAR} [data-testid=kubelab-cell-step-name]")


def test_editor_edits_the_active_notebook(page, lab_server) -> None:
    write_notebook(lab_server, "editor-a.ipynb", code("a = 1", "step:alpha"))
    write_notebook(lab_server, "editor-b.ipynb", code("b = 2", "step:beta"))
    open_notebook_with_sidebar(page, lab_server, "editor-a.ipynb")
    select_cell(page, 0)
    page.wait_for_function(
        f"document.querySelector('{SIDEBAR} [data-testid=kubelab-cell-step-name]')?.value"
        " === 'alpha'"
    )

    # Another notebook becomes the active one: the editor shows (and edits) its cell.
    open_in_file_browser(page, "editor-b.ipynb")
    show_sidebar(page)
    page.wait_for_function(
        "document.querySelector('.jp-kubelab-notebook-name')?.textContent === 'editor-b.ipynb'"
    )
    assert step_name_field(page).input_value() == "beta"
    rename_step(page, "gamma")
    save_notebook(page, lab_server, "editor-b.ipynb", lambda tags: tags == [["step:gamma"]])
    assert read_tags(lab_server, "editor-a.ipynb") == [["step:alpha"]]

    # And back: the first notebook's cell again.
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="editor-a.ipynb").click()
    page.wait_for_function(
        "document.querySelector('.jp-kubelab-notebook-name')?.textContent === 'editor-a.ipynb'"
    )
    assert step_name_field(page).input_value() == "alpha"
    rename_step(page, "delta")
    save_notebook(page, lab_server, "editor-a.ipynb", lambda tags: tags == [["step:delta"]])
    assert read_tags(lab_server, "editor-b.ipynb") == [["step:gamma"]]


def test_sidebar_survives_a_page_reload(page, lab_server) -> None:
    write_notebook(
        lab_server,
        "reload.ipynb",
        code("x = 1", "step:first"),
        code("y = x", "step:second"),
        code("print(y)"),
    )
    open_notebook_with_sidebar(page, lab_server, "reload.ipynb")
    page.locator(f"{SIDEBAR} [data-testid=kubelab-step-second]").wait_for()
    # The notebook is restored with this cell active; the editor follows it.
    select_cell(page, 1)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # Once the lab has saved the layout (the sidebar open), reload from the address
    # without `&reset`, so the saved layout comes back.
    for _ in range(50):
        saved = lab_api(lab_server, "GET", "lab/api/workspaces/kubelab-reload")
        left = saved.get("data", {}).get("layout-restorer:data", {}).get("left", {})
        if left.get("current") == "kubelab-sidebar":
            break
        page.wait_for_timeout(200)
    else:
        raise AssertionError(f"the layout with the sidebar was never saved: {left}")
    page.goto(lab_server.lab_url("lab/workspaces/kubelab-reload/tree/reload.ipynb"))
    for _ in range(2):
        page.reload()
        page.wait_for_selector(f"{CELLS}", state="visible", timeout=60_000)
        page.wait_for_selector(SIDEBAR, state="visible")
        # Well before the next status poll (30 s), every part of the panel is there.
        for part in ("kubelab-status", "kubelab-step-second", "kubelab-cell-editor"):
            page.locator(f"{SIDEBAR} [data-testid={part}]").wait_for(timeout=10_000)
        assert page.locator(".jp-kubelab-notebook-name").inner_text() == "reload.ipynb"
        assert errors == []
