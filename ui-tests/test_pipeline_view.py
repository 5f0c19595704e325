"""The full-size pipeline view: readable labels, zoom and pan, step details, contrast."""

from __future__ import annotations

import re

import pytest
from lab_helpers import (
    SIDEBAR,
    code,
    open_notebook_with_sidebar,
    run_command,
    set_theme,
    small_targets,
    write_notebook,
)

pytestmark = pytest.mark.ui

VIEW = "#kubelab-pipeline-view"
DAG = f"{VIEW} [data-testid=kubelab-dag]"


def relative_luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def parse_color(css: str) -> tuple[float, float, float, float]:
    values = [float(v) for v in re.findall(r"[\d.]+", css)]
    return (*values[:3], values[3] if len(values) > 3 else 1.0)  # type: ignore[return-value]


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast of a (maybe translucent) colour drawn on an opaque background."""
    fr, fg, fb, alpha = parse_color(foreground)
    br, bg, bb, _ = parse_color(background)
    drawn = (
        fr * alpha + br * (1 - alpha),
        fg * alpha + bg * (1 - alpha),
        fb * alpha + bb * (1 - alpha),
    )
    lighter, darker = sorted(
        (relative_luminance(drawn), relative_luminance((br, bg, bb))), reverse=True
    )
    return (lighter + 0.05) / (darker + 0.05)


def edge_contrast(page) -> float:
    stroke = page.locator(f"{DAG} .jp-kubelab-dag-edge").first.evaluate(
        "e => getComputedStyle(e).stroke"
    )
    background = page.locator(f"{VIEW} .jp-kubelab-view-graph").evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    return contrast(stroke, background)


def test_pipeline_view_is_readable_zooms_and_shows_a_step(page, lab_server, output_dir) -> None:
    write_notebook(
        lab_server,
        "wide.ipynb",
        code("import time", "imports"),
        code("rows = list(range(10))", "step:load_the_raw_measurements"),
        *[
            code(f"part_{i} = [r * {i} for r in rows]", f"step:transform_variant_{i}")
            for i in range(6)
        ],
        code("total = " + " + ".join(f"sum(part_{i})" for i in range(6)), "step:combine"),
    )
    open_notebook_with_sidebar(page, lab_server, "wide.ipynb")
    page.locator(f"{SIDEBAR} [data-testid=kubelab-step-combine]").wait_for()
    # From the command palette, docked beside the notebook.
    run_command(page, "Open Pipeline View")
    page.locator(DAG).wait_for()
    notebook_box = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").bounding_box()
    view_box = page.locator(VIEW).bounding_box()
    assert view_box["x"] >= notebook_box["x"] + notebook_box["width"] - 1  # side by side

    # Labels at a readable size, as rendered (the graph is not shrunk to fit).
    node = page.locator(f"{DAG} [data-testid=kubelab-dag-node-transform_variant_5]")
    for part in (".jp-kubelab-dag-name", ".jp-kubelab-dag-status"):
        text = node.locator(part)
        assert float(text.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 11
        assert text.bounding_box()["height"] >= 11
    # Long names are not cut where they differ.
    names = page.locator(f"{DAG} .jp-kubelab-dag-name").evaluate_all(
        "texts => texts.map(t => t.textContent)"
    )
    assert len(set(names)) == len(names) == 8

    # Zoom with the buttons and the keyboard; pan with the arrows.
    zoom = lambda: float(page.locator(DAG).get_attribute("data-zoom"))  # noqa: E731
    before = zoom()
    page.locator(f"{VIEW} [data-testid=kubelab-zoom-in]").click()
    assert zoom() == pytest.approx(before * 1.2, rel=0.01)
    page.locator(DAG).focus()
    page.keyboard.press("-")
    page.keyboard.press("-")
    assert zoom() < before
    page.keyboard.press("0")  # fit, never below readable
    assert zoom() >= 11 / 12 - 1e-3
    box = node.bounding_box()
    page.keyboard.press("ArrowLeft")
    assert node.bounding_box()["x"] == pytest.approx(box["x"] + 40, abs=1)

    # Nodes are buttons: Tab to one (the graph pans to it), Enter shows its details.
    details = page.locator(f"{VIEW} [data-testid=kubelab-step-details]")
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.testid").endswith("variant_5"):
            break
    box = page.locator(f"{VIEW} .jp-kubelab-view-graph").bounding_box()
    inside = node.bounding_box()
    assert box["x"] <= inside["x"] and inside["x"] + inside["width"] <= box["x"] + box["width"]
    page.keyboard.press("Enter")
    assert details.locator("h3").inner_text() == "transform_variant_5"
    text = details.inner_text()
    assert "cell 8" in text  # 1-based, as JupyterLab counts
    assert "rows from load_the_raw_measurements" in text
    assert "part_5 to combine" in text
    # The sidebar and the cell label select the same step.
    page.wait_for_selector(
        f"{SIDEBAR} [data-testid=kubelab-step-transform_variant_5].jp-mod-selected"
    )

    # Every control is at least 24 x 24 px to hit.
    small = small_targets(page, f"{SIDEBAR}, {VIEW}")
    assert small == [], "\n".join(small)

    # Edges stand out from the background (3:1) in both themes.
    assert edge_contrast(page) >= 3
    page.screenshot(path=str(output_dir / "pipeline-view.png"))
    set_theme(page, "JupyterLab Dark")
    assert edge_contrast(page) >= 3
    page.screenshot(path=str(output_dir / "pipeline-view-dark.png"))
    set_theme(page, "JupyterLab Light")


def test_pipeline_view_opens_from_the_sidebar_and_the_toolbar(page, lab_server) -> None:
    write_notebook(
        lab_server, "toolbar.ipynb", code("x = 1", "step:one"), code("y = x", "step:two")
    )
    open_notebook_with_sidebar(page, lab_server, "toolbar.ipynb")
    page.locator(f"{SIDEBAR} [data-testid=kubelab-step-two]").wait_for()
    # The notebook toolbar's Run as pipeline button runs the notebook.
    page.locator(".jp-NotebookPanel-toolbar [data-command='kubelab:run-pipeline']").click()
    page.locator(f"{SIDEBAR} [data-testid=kubelab-open-pipeline]").click()
    page.wait_for_selector(
        f"{DAG} [data-testid=kubelab-dag-node-two][data-state=succeeded]", timeout=60_000
    )
