"""What the UI tests share: notebooks of their own, opening them with the kubelab sidebar,
selecting cells, switching themes, and calls to the lab server's REST API."""

from __future__ import annotations

import json
import re
import urllib.request

import nbformat

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
CELLS = f"{NOTEBOOK} .jp-Notebook .jp-Cell"
SIDEBAR = "#kubelab-sidebar"


def lab_api(lab_server, method: str, path: str, body: object = None) -> object:
    request = urllib.request.Request(
        f"{lab_server.url}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {lab_server.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


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


def write_notebook(lab_server, name: str, *cells: nbformat.NotebookNode) -> None:
    nbformat.write(new_notebook(*cells), lab_server.root_dir / name)


def read_tags(lab_server, name: str) -> list[list[str]] | None:
    """Each cell's tags as saved, or None while the file is being written."""
    try:
        saved = nbformat.read(lab_server.root_dir / name, as_version=4)
    except (ValueError, nbformat.reader.NotJSONError):
        return None
    return [list(c.metadata.get("tags", [])) for c in saved.cells]


def set_theme(page, theme: str) -> None:
    """Settings > Theme > `theme` (persisted in the session's settings: set it back)."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{theme}$")).click()
    light = "false" if "Dark" in theme else "true"
    page.wait_for_function(f"document.body.dataset.jpThemeLight === '{light}'")
    # The lab shows its splash while the theme's CSS loads.
    page.wait_for_selector("#jupyterlab-splash", state="detached")


def screenshots(page, output_dir, name: str) -> None:
    """`name.png` in the light theme and `name-dark.png` in the dark one (then light again)."""
    page.screenshot(path=str(output_dir / f"{name}.png"))
    set_theme(page, "JupyterLab Dark")
    page.screenshot(path=str(output_dir / f"{name}-dark.png"))
    set_theme(page, "JupyterLab Light")


def open_notebook_with_sidebar(page, lab_server, name: str, theme: str | None = None) -> None:
    # A workspace of its own, reset: other tests' open tabs and sidebars stay untouched.
    workspace = "kubelab-" + name.removesuffix(".ipynb")
    url = lab_server.lab_url(f"lab/workspaces/{workspace}/tree/{name}") + "&reset"
    page.goto(url)
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell", state="visible", timeout=60_000)
    if theme:
        set_theme(page, theme)
    show_sidebar(page)
    wait_for_notebook_name(page, name)


def wait_for_notebook_name(page, name: str) -> None:
    """The kubelab views follow the active notebook: wait until they show `name`."""
    page.wait_for_function(
        f"document.querySelector('.jp-kubelab-notebook-name')?.textContent === {name!r}"
    )


def show_sidebar(page) -> None:
    # The layout is restored by now; a click on the tab would close a sidebar left open.
    if not page.locator(SIDEBAR).is_visible():
        # a lab's first page load activates every extension: slow on a busy machine
        tab = page.locator(".jp-SideBar .lm-TabBar-tab[data-id='kubelab-sidebar']")
        tab.click(timeout=90_000)
    page.wait_for_selector(SIDEBAR, state="visible")


def open_in_file_browser(page, name: str) -> None:
    """Open another notebook the way a user does: double-click it in the file browser."""
    page.locator(".jp-SideBar .lm-TabBar-tab[data-id='filebrowser']").click()
    page.locator(f".jp-DirListing-item[title*='{name}']").dblclick()
    page.wait_for_selector(f".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current:has-text('{name}')")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell", state="visible")


def select_cell(page, index: int) -> None:
    cell = page.locator(CELLS).nth(index)
    cell.locator(".jp-InputPrompt").click()
    page.wait_for_function(
        f"document.querySelectorAll({CELLS!r})[{index}].classList.contains('jp-mod-active')"
    )


def save_notebook(page, lab_server, name: str, check) -> list[list[str]]:
    """Ctrl+S, then wait until the file on disk passes `check(tags per cell)`."""
    page.keyboard.press("Control+s")
    tags: list[list[str]] | None = None
    for _ in range(50):
        tags = read_tags(lab_server, name)
        if tags is not None and check(tags):
            return tags
        page.wait_for_timeout(200)
    raise AssertionError(f"{name} was not saved as expected; tags on disk: {tags}")


def open_palette(page):
    """Open the command palette with its shortcut (Ctrl+Shift+C); returns its input."""
    palette = page.locator(".lm-CommandPalette-input")
    for _ in range(8):
        if palette.is_visible():
            break
        # Right after a page load the lab can miss a shortcut (a busy machine): Escape
        # leaves whatever had the keys, and the shortcut is sent again until it opens.
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Shift+C")
        try:
            palette.wait_for(timeout=4000)
            break
        except Exception:  # Playwright's TimeoutError: try once more
            continue
    return palette


def run_command(page, label: str) -> None:
    """Run a command from the palette with the keyboard only: Ctrl+Shift+C, its name, Enter."""
    for _ in range(3):
        # The palette closes when it loses the focus (a kernel that just started can
        # take it): open it again then.
        try:
            open_palette(page).fill(label, timeout=5000)
            page.locator(".lm-CommandPalette-item.lm-mod-active", has_text=label).wait_for(
                timeout=5000
            )
            break
        except Exception:  # Playwright's TimeoutError
            continue
    page.keyboard.press("Enter")


def small_targets(page, root: str) -> list[str]:
    """Controls under `root` smaller than 24 x 24 px (WCAG 2.2 target size); links
    inside a sentence only need the line's height, and checkboxes count with their label."""
    return page.evaluate(
        """root => [...document.querySelectorAll(root)].flatMap(r => [...r.querySelectorAll(
            'button, jp-button, select, input, [role=button], [role=option], summary'
        )]).filter(e => e.offsetParent !== null || e.getClientRects().length > 0)
          .filter(e => !(e.type === 'checkbox' && e.closest('label')))
          .map(e => {
            const box = (e.type === 'checkbox' ? e.closest('label') : e).getBoundingClientRect();
            const inline = e.classList.contains('jp-kubelab-link');
            const ok = box.height >= 24 && (inline || box.width >= 24);
            return ok ? null : `${e.tagName.toLowerCase()}.${e.className} "${
              (e.textContent || e.getAttribute('aria-label') || '').trim().slice(0, 30)
            }" ${Math.round(box.width)}x${Math.round(box.height)}`;
          }).filter(Boolean)""",
        root,
    )
