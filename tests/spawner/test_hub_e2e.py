"""End to end: JupyterHub + configurable-http-proxy + oidc-provider-mock + LocalKubelabSpawner.

Everything is real and local: the OIDC login is the OAuth2 code flow driven over HTTP,
the spawn goes through the hub's form, and the single-user server is a real process.
"""

from __future__ import annotations

import html
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .hub_stack import (
    CHP,
    HubStack,
    error_text,
    oidc_login,
    post_spawn,
    running_hub,
    singleuser_pid,
    start_hub,
    stop_hub,
    wait_for_lab,
)

pytestmark = pytest.mark.skipif(not CHP.exists(), reason=f"configurable-http-proxy missing: {CHP}")

TOKEN_LIFETIME = 8  # seconds; the spawner renews tokens within 5 s of expiry


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubStack]:
    hub_dir = tmp_path_factory.mktemp("hub")
    with running_hub(
        hub_dir,
        "--gpu-ids",
        "0",
        "--token-max-age",
        str(TOKEN_LIFETIME),
        env={"KUBELAB_POLL_INTERVAL": "1", "KUBELAB_TOKEN_REFRESH_MARGIN": "5"},
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def alice(hub: HubStack) -> requests.Session:
    """alice (gpu-users, data-science) logged in and running the GPU profile."""
    session = oidc_login(hub, "alice")
    form = session.get(f"{hub.url}/hub/spawn/alice", timeout=30).text
    assert 'value="gpu-1"' in form and 'value="mig-small"' in form
    assert "MIG slices are only available on Kubernetes" in html.unescape(form)
    spawned = post_spawn(
        session, hub, "alice", {"profile": "gpu-1", "profile-option-gpu-1--image": "pytorch"}
    )
    assert spawned.status_code == 302, error_text(spawned) or spawned.text[:500]
    # the token issued at login, before the spawner renews it (it expires in 8 s)
    token_file = hub.hub_dir / "runtime" / "alice" / "oidc" / "access_token"
    deadline = time.monotonic() + 10
    while not token_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    session.login_token = token_file.read_text()  # type: ignore[attr-defined]
    wait_for_lab(session, hub, "alice")
    return session


def test_login_spawn_and_status_show_identity_and_profile(hub: HubStack, alice: requests.Session):
    status = alice.get(f"{hub.url}/user/alice/kubelab/api/status", timeout=30)
    assert status.status_code == 200
    body = status.json()
    assert body["identity"]["user"] == "alice"
    assert body["identity"]["name"] == "Alice Example"  # the OIDC name claim
    assert body["identity"]["groups"] == ["data-science", "gpu-users"]
    assert body["identity"]["tokens"] == {"access_token": True, "id_token": True}
    profile = body["profile"]
    assert profile["slug"] == "gpu-1"
    assert profile["image"] == "quay.io/jupyter/pytorch-notebook:2025-03-14"
    assert profile["gpu"] == {"count": 1, "resource": "nvidia.com/gpu"}
    assert profile["memory"]["limit"] == "24Gi"

    # JupyterLab is the UI, the demo notebook was copied into the new home
    assert (hub.hub_dir / "home" / "alice").is_dir()
    if (Path(__file__).resolve().parents[2] / "examples" / "demo.ipynb").exists():
        assert (hub.hub_dir / "home" / "alice" / "demo.ipynb").exists()


def test_tokens_are_private_files_never_environment(hub: HubStack, alice: requests.Session):
    runtime = hub.hub_dir / "runtime" / "alice"
    token_dir = runtime / "oidc"
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    assert stat.S_IMODE(token_dir.stat().st_mode) == 0o700
    for name in ("access_token", "id_token"):
        assert stat.S_IMODE((token_dir / name).stat().st_mode) == 0o600

    pid = singleuser_pid(hub.hub_dir, "alice")
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(item.split(b"=", 1) for item in environ if b"=" in item)
    assert env[b"CUDA_VISIBLE_DEVICES"] == b"0"  # the GPU alice was given
    assert env[b"KUBELAB_TOKEN_DIR"] == str(token_dir).encode()
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert str(24 * 1024**3) in next(line for line in limits.splitlines() if "address" in line)

    # whatever token is current (they are renewed), no value may leak
    for _ in range(3):
        tokens = [(token_dir / n).read_bytes() for n in ("access_token", "id_token")]
        assert all(tokens)
        blob = Path(f"/proc/{pid}/environ").read_bytes()
        assert not any(t in blob for t in tokens)
        assert not any(t.decode() in hub.log() for t in tokens)
        time.sleep(0.5)


def test_tokens_are_renewed_while_the_server_runs(hub: HubStack, alice: requests.Session):
    """The login token lives 8 s; the hub's poll renews it with the refresh token."""
    token_file = hub.hub_dir / "runtime" / "alice" / "oidc" / "access_token"
    deadline = time.monotonic() + 3 * TOKEN_LIFETIME
    while "renewed OIDC tokens for alice" not in hub.log() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "renewed OIDC tokens for alice" in hub.log()
    time.sleep(0.3)
    current = token_file.read_text()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert current != alice.login_token  # type: ignore[attr-defined]

    def userinfo(token: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return requests.get(f"{hub.oidc_url}/userinfo", headers=headers, timeout=10)

    assert userinfo(current).status_code == 200
    assert userinfo(current).json()["sub"] == "alice"
    assert userinfo(alice.login_token).status_code in (400, 401)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"profile": "gpu-1"}, 403, "Profile 'gpu-1' is not allowed for your groups"),
        ({"profile": "quantum-9000"}, 400, "Unknown profile 'quantum-9000'"),
        (
            {"profile": "small", "profile-option-small--image": "pytorch-cuda"},
            403,
            "Image 'pytorch-cuda' is not offered by profile 'small'",
        ),
    ],
)
def test_crafted_spawn_form_is_refused(
    hub: HubStack, form: dict[str, str], status: int, message: str
) -> None:
    bob = oidc_login(hub, "bob")  # data-science only
    page = bob.get(f"{hub.url}/hub/spawn/bob", timeout=30).text
    assert 'value="large"' in page and 'value="gpu-1"' not in page
    refused = post_spawn(bob, hub, "bob", form)
    assert refused.status_code == status
    assert message in html.unescape(error_text(refused))
    assert not (hub.hub_dir / "runtime" / "bob" / "identity.json").exists()


def test_rest_api_spawn_is_checked_too(hub: HubStack) -> None:
    bob = oidc_login(hub, "bob")
    bob.get(f"{hub.url}/hub/home", timeout=30)
    xsrf = next(c.value for c in bob.cookies if c.name == "_xsrf" and c.path == "/hub/")
    response = bob.post(
        f"{hub.url}/hub/api/users/bob/server",
        json={"profile": "mig-small"},
        headers={"X-XSRFToken": xsrf},
        timeout=30,
    )
    assert response.status_code == 403, response.text
    assert "not allowed for your groups" in response.json()["message"]


def test_invalid_profiles_file_stops_the_hub(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "deploy/profiles.example.yaml").read_text()
    )
    data["profiles"][2]["gpu"]["count"] = -1
    bad = tmp_path / "profiles.yaml"
    bad.write_text(yaml.safe_dump(data))
    stack = start_hub(tmp_path / "hub", "--profiles", str(bad))
    try:
        stack.proc.wait(timeout=45)
        assert stack.proc.returncode != 0
        log = stack.log()
        assert "profiles[2].gpu.count: -1 is less than the minimum of 0" in log
        assert "kubelab is running" not in log
    finally:
        stop_hub(stack)
    assert not os.path.exists(tmp_path / "hub" / "jupyterhub.pid")
