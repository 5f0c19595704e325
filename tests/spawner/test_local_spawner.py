"""LocalKubelabSpawner pieces: GPU allocation, the form, limits, token and identity files."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from tornado import web

from kubelab.spawner import LocalKubelabSpawner, load_profiles
from kubelab.spawner.gpu import GPUAllocator, detect_gpus
from kubelab.spawner.local import local_unavailable_reason, render_local_form
from kubelab.spawner.tokens import remove_token_files, write_token_files

from .conftest import EXAMPLE_PROFILES


def test_gpu_allocator_never_shares() -> None:
    gpus = GPUAllocator(["0", "1", "2"])
    assert gpus.allocate("alice/", 2) == ["0", "1"]
    assert gpus.allocate("bob/", 1) == ["2"]
    with pytest.raises(RuntimeError, match="only 0 of 3 are free"):
        gpus.allocate("carol/", 1)
    gpus.release("alice/")
    assert gpus.allocate("carol/", 2) == ["0", "1"]
    gpus.restore("alice/", ["2", "7"])  # after a hub restart; unknown ids dropped
    assert gpus.owned("alice/") == ["2"]


def test_detect_gpus_without_driver() -> None:
    assert detect_gpus("no-such-nvidia-smi") == []


def test_form_disables_unavailable_profiles_with_reason() -> None:
    config = load_profiles(EXAMPLE_PROFILES)
    alice = {"gpu-users", "data-science"}
    form = render_local_form(config, alice, [], [])
    assert 'value="gpu-1" id="profile-gpu-1" disabled' in form
    assert "no GPU detected on this machine" in form
    assert "MIG slices are only available on Kubernetes" in form
    assert 'value="small" id="profile-small" checked' in form
    with_gpu = render_local_form(config, alice, ["0"], ["0"])
    assert 'value="gpu-1" id="profile-gpu-1">' in with_gpu
    busy = local_unavailable_reason(config.profile("gpu-1"), ["0"], [])
    assert busy == "all GPUs are in use (0 of 1 free)"
    bob = render_local_form(config, {"data-science"}, ["0"], ["0"])
    assert "gpu-1" not in bob and "large" in bob
    nobody = render_local_form(config, set(), [], [])
    assert "small" in nobody and "large" not in nobody


def test_token_files_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "runtime" / "oidc"
    write_token_files(directory, {"access_token": "a1", "id_token": "i1"})
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "access_token").stat().st_mode) == 0o600
    write_token_files(directory, {"access_token": "a2"})  # refresh without id_token
    assert (directory / "access_token").read_text() == "a2"
    assert (directory / "id_token").read_text() == "i1"
    remove_token_files(directory)
    assert not list(directory.iterdir())


@pytest.mark.asyncio
async def test_two_users_get_different_gpus(make_user: Any, tmp_path: Path) -> None:
    traits = {
        "gpu_ids": ["0", "1"],
        "cmd": ["sleep", "30"],
        "args": [],
        # GPUs and rlimits only: own Unix accounts are tested in test_local_accounts.py
        "unix_accounts": False,
        "allow_shared_account": True,
    }
    spawners = [
        make_user(name, ["gpu-users"], LocalKubelabSpawner, **traits).spawner
        for name in ("alice", "dave")
    ]
    started: list[Any] = []
    try:
        for spawner in spawners:
            spawner.user_options = {"profile": "gpu-1"}
            await spawner.apply_user_options(spawner, spawner.user_options)
            spawner.get_args = lambda: []  # plain `sleep`, not a Jupyter server
            await spawner.start()
            started.append(spawner)
        envs = [
            dict(
                item.split(b"=", 1)
                for item in Path(f"/proc/{s.pid}/environ").read_bytes().split(b"\0")
                if b"=" in item
            )
            for s in spawners
        ]
        assert {e[b"CUDA_VISIBLE_DEVICES"] for e in envs} == {b"0", b"1"}
        limits = Path(f"/proc/{spawners[0].pid}/limits").read_text()
        assert str(24 * 1024**3) in limits
        identity = json.loads(Path(envs[0][b"KUBELAB_IDENTITY_FILE"].decode()).read_text())
        assert identity["user"] == "alice" and identity["profile"]["slug"] == "gpu-1"
        assert identity["groups"] == ["gpu-users"]

        third = make_user("erin", ["gpu-users"], LocalKubelabSpawner, **traits).spawner
        with pytest.raises(web.HTTPError) as busy:
            await third._run_apply_user_options({"profile": "gpu-1"})
        assert busy.value.status_code == 409
        assert "all GPUs are in use" in busy.value.jupyterhub_message
    finally:
        for spawner in started:
            await spawner.stop(now=True)
    assert spawners[0].gpu_allocator.free() == ["0", "1"]


def test_homes_stay_inside_the_root_and_distinct(make_user: Any, tmp_path: Path) -> None:
    traits = {"home_dir_template": str(tmp_path / "home" / "{username}")}
    homes = {
        name: Path(make_user(name, [], LocalKubelabSpawner, **traits).spawner.home_dir)
        for name in ("a.b", "a-b", "../../etc")
    }
    assert len(set(homes.values())) == 3
    for home in homes.values():
        assert home.resolve().parent == (tmp_path / "home").resolve()


def test_welcome_notebook_copied_once(make_user: Any, tmp_path: Path) -> None:
    demo = tmp_path / "demo.ipynb"
    traits = {
        "home_dir_template": str(tmp_path / "home" / "{username}"),
        "welcome_notebooks": [str(demo), str(tmp_path / "missing.ipynb")],
        "default_lab_settings": {"@jupyterlab/apputils-extension:notification": {"x": 1}},
    }
    spawner = make_user("alice", [], LocalKubelabSpawner, **traits).spawner
    spawner._prepare_home()  # before the example exists: nothing to copy yet
    home = Path(spawner.home_dir)
    assert not (home / "demo.ipynb").exists()
    demo.write_text("{}")
    spawner._prepare_home()
    assert (home / "demo.ipynb").read_text() == "{}"
    (home / "demo.ipynb").unlink()  # the user deleted it: it stays deleted
    spawner._prepare_home()
    assert not (home / "demo.ipynb").exists()
    settings = home / ".jupyter/lab/user-settings/@jupyterlab/apputils-extension"
    assert json.loads((settings / "notification.jupyterlab-settings").read_text()) == {"x": 1}
