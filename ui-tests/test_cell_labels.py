"""Step labels on the notebook's cells: what each cell is in the pipeline, from the compiler."""

from __future__ import annotations

import pytest
from lab_helpers import (
    CELLS,
    SIDEBAR,
    code,
    open_notebook_with_sidebar,
    run_command,
    screenshots,
    write_notebook,
)

pytestmark = pytest.mark.ui

LABELS = f"{CELLS} [data-testid=kubelab-cell-label]"


def labels_by_cell(page) -> list[str | None]:
    """The label text of each cell (None for a cell without one, e.g. markdown)."""
    return page.evaluate(
        f"""[...document.querySelectorAll({CELLS!r})].map(cell => {{
            const label = cell.querySelector(':scope > [data-testid=kubelab-cell-label]');
            return label ? label.textContent : null;
        }})"""
    )


def test_each_cell_shows_its_step(page, lab_server, output_dir) -> None:
    import nbformat

    write_notebook(
        lab_server,
        "labels.ipynb",
        code("import math", "imports"),
        code("n = 3", "pipeline-parameters"),
        nbformat.v4.new_markdown_cell("## Data"),
        code("data = list(range(n))", "step:load"),
        code("data.append(n)"),  # joins load
        code("print('a plot')", "skip"),
        code("total = sum(data)", "step:add", "prev:load"),
        code("total", "pipeline-metrics"),
    )
    open_notebook_with_sidebar(page, lab_server, "labels.ipynb")
    page.wait_for_function(f"document.querySelectorAll({LABELS!r}).length === 7", timeout=30_000)
    assert labels_by_cell(page) == [
        "imports",
        "parameters",
        None,
        "load",
        "load",
        "skip",
        "add",
        "metrics",
    ]
    cells = page.locator(CELLS)
    first = cells.nth(3).locator("[data-testid=kubelab-cell-label]")
    joined = cells.nth(4).locator("[data-testid=kubelab-cell-label]")
    # The cell that continues a step shows its name muted; both have the step's colour.
    assert "jp-kubelab-cell-label-first" in first.get_attribute("class")
    assert "jp-kubelab-cell-label-joined" in joined.get_attribute("class")
    color = "e => getComputedStyle(e).borderLeftColor"
    assert first.evaluate(color) == joined.evaluate(color)
    assert first.evaluate("e => getComputedStyle(e).fontWeight") == "600"
    assert joined.evaluate("e => getComputedStyle(e).fontWeight") == "400"
    # Its dependencies on hover (and for screen readers).
    add = cells.nth(6).locator("[data-testid=kubelab-cell-label]")
    assert add.get_attribute("title").splitlines()[:2] == [
        "Step add",
        "needs data from load",
    ]
    assert "Part of step load" in joined.get_attribute("aria-label")
    # At least 24 px to hit.
    assert add.bounding_box()["height"] >= 22
    screenshots(page, output_dir, "cell-labels")

    # A click selects the step in the sidebar.
    add.click()
    page.wait_for_selector(f"{SIDEBAR} [data-testid=kubelab-step-add].jp-mod-selected")
    assert "jp-mod-selected" in add.get_attribute("class")

    # The labels follow the tags: tagging the joined cell makes it a step of its own.
    from lab_helpers import select_cell

    select_cell(page, 4)
    page.get_by_label("Role").select_option("step")
    page.wait_for_function(
        f"document.querySelectorAll({CELLS!r})[4]"
        ".querySelector('[data-testid=kubelab-cell-label]')?.textContent === 'step1'"
    )

    # Off in the settings (the command toggles the `cellLabels` setting), and back on.
    run_command(page, "Show Step Labels on Cells")
    page.wait_for_function(f"document.querySelectorAll({LABELS!r}).length === 0")
    run_command(page, "Show Step Labels on Cells")
    page.wait_for_function(f"document.querySelectorAll({LABELS!r}).length === 7")
