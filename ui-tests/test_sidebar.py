"""The kubelab sidebar in a real JupyterLab, driven in headless Chromium."""

from __future__ import annotations

import nbformat
import pytest
from lab_helpers import run_command

pytestmark = pytest.mark.ui


def open_lab(page, lab_server) -> None:
    page.goto(lab_server.lab_url())
    page.wait_for_selector("#jp-main-dock-panel", state="visible", timeout=60_000)
    page.wait_for_selector(".jp-LabShell", state="visible")


def open_kubelab_from_palette(page) -> None:
    run_command(page, "Open kubelab Sidebar")
    page.wait_for_selector("#kubelab-sidebar", state="visible")


def test_sidebar_shows_status_and_follows_the_active_notebook(page, lab_server, output_dir) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1")],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(notebook, lab_server.root_dir / "sidebar-check.ipynb")

    open_lab(page, lab_server)
    open_kubelab_from_palette(page)

    status = page.locator("[data-testid=kubelab-status]")
    status.wait_for()
    assert "kubelab 0.1.0" in status.inner_text()
    assert page.locator(".jp-kubelab-backend").inner_text() == "local"
    assert page.locator(".jp-kubelab-user").inner_text().strip() != ""
    assert "Open a notebook" in page.locator("[data-testid=kubelab-empty]").inner_text()

    # Open the notebook the way a user does: double-click it in the file browser.
    page.locator(".jp-SideBar .lm-TabBar-tab[data-id='filebrowser']").click()
    page.locator(".jp-DirListing-item[title*='sidebar-check.ipynb']").dblclick()
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="visible")

    page.locator(".jp-SideBar .lm-TabBar-tab[data-id='kubelab-sidebar']").click()
    name = page.locator(".jp-kubelab-notebook-name")
    name.wait_for()
    assert name.inner_text() == "sidebar-check.ipynb"

    page.screenshot(path=str(output_dir / "sidebar.png"))
