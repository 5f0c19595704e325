"""In real Chromium: hub login page → OIDC provider → profile form → JupyterLab + sidebar."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hub_fixtures import demo_hub_stack

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from demo_hub_stack(tmp_path_factory)


def test_oidc_login_profile_form_and_lab(page: Any, demo_hub: Any, output_dir: Any) -> None:
    page.goto(f"{demo_hub.url}/hub/login")
    page.get_by_role("button", name="Sign in with kubelab demo OIDC").click()

    # the OIDC provider's own page: pick the predefined user alice
    page.wait_for_url(f"{demo_hub.oidc_url}/oauth2/authorize*")
    page.locator("button[name=sub][value=alice]").click()

    # back at the hub: the profile form, filtered by alice's groups
    page.wait_for_url(f"{demo_hub.url}/hub/spawn*")
    page.wait_for_selector("#kubelab-profiles")
    assert page.locator("#profile-small").is_checked()
    assert page.locator("#profile-gpu-1").is_disabled()  # no GPU on this machine
    assert "no GPU detected" in page.locator("#kubelab-profiles").inner_text()
    page.locator("#profile-large").check()
    page.select_option("select[name='profile-option-large--image']", "pytorch")
    page.screenshot(path=str(output_dir / "hub-profile-form.png"), full_page=True)
    page.get_by_role("button", name="Start").click()

    # JupyterLab is the default UI of the spawned server
    page.wait_for_url(f"{demo_hub.url}/user/alice/lab*", timeout=90_000)
    page.wait_for_selector("#jp-main-dock-panel", state="visible", timeout=90_000)

    # the kubelab sidebar shows who is logged in and with which profile
    page.locator(".jp-SideBar .lm-TabBar-tab[data-id='kubelab-sidebar']").click()
    user = page.locator("#kubelab-sidebar .jp-kubelab-user")
    user.wait_for()
    assert "Alice Example" in user.inner_text()
    groups = user.get_attribute("title") or ""  # the groups are the name's tooltip
    assert "gpu-users" in groups and "data-science" in groups
    assert "Large" in page.locator("#kubelab-sidebar .jp-kubelab-profile").inner_text()
    page.screenshot(path=str(output_dir / "hub-lab.png"))
