"""One machine, several users: each local server runs as a Unix account of its own.

As root (the sandbox and CI), the spawner creates `kubelab-<name>` accounts, starts
each server with that uid in a cgroup with the profile's limits, and hands the user
their home and token files (0700/0600): one user's server cannot read another's
files, tokens or the hub's database. Without root, a second user's server is refused
unless the admin accepts a shared account.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tornado import web

from kubelab.spawner import LocalKubelabSpawner
from kubelab.spawner.accounts import account_name, unreachable
from kubelab.spawner.limits import create_cgroup

from .hub_stack import (
    CHP,
    HubStack,
    error_text,
    oidc_login,
    post_spawn,
    running_hub,
    singleuser_pid,
    wait_for_lab,
)

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="creating Unix accounts needs root")


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def read_as(uid: int, path: Path) -> subprocess.CompletedProcess[str]:
    """`cat path` as another uid: what that user's server could read."""
    return subprocess.run(
        ["cat", str(path)],
        capture_output=True,
        text=True,
        timeout=10,
        preexec_fn=lambda: (os.setgroups([]), os.setgid(uid), os.setuid(uid)),
        check=False,
    )


@pytest.fixture
def users_root() -> Iterator[Path]:
    """Homes and runtime dirs under a folder every account may enter (not list)."""
    base = Path(tempfile.mkdtemp(prefix="kubelab-accounts-", dir="/tmp"))
    base.chmod(0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def start_traits(base: Path) -> dict[str, Any]:
    return {
        "cmd": ["sleep", "60"],
        "args": [],
        "home_dir_template": str(base / "home" / "{username}"),
        "runtime_dir_template": str(base / "runtime" / "{username}"),
    }


async def started(make_user: Any, name: str, groups: list[str], **traits: Any) -> Any:
    spawner = make_user(name, groups, LocalKubelabSpawner, **traits).spawner
    spawner.user_options = {"profile": "small"}
    await spawner.apply_user_options(spawner, spawner.user_options)
    spawner.get_args = lambda: []  # plain `sleep`, not a Jupyter server
    await spawner.start()
    return spawner


@needs_root
@pytest.mark.asyncio
async def test_each_user_is_a_unix_account_with_private_files_and_cgroup_limits(
    make_user: Any, users_root: Path
) -> None:
    traits = start_traits(users_root)
    spawners = []
    try:
        for name in ("acct-ann", "acct-ben"):
            spawner = await started(make_user, name, [], **traits)
            spawners.append(spawner)
            await spawner.deliver_tokens({"access_token": f"secret-of-{name}"})
        ann, ben = spawners
        accounts = [pwd.getpwnam(account_name("kubelab-", s.user.name)) for s in spawners]
        assert [uid_of(s.pid) for s in spawners] == [a.pw_uid for a in accounts]
        assert accounts[0].pw_uid != accounts[1].pw_uid
        for spawner, account in zip(spawners, accounts, strict=True):
            home = Path(spawner.home_dir)
            assert home.stat().st_uid == account.pw_uid
            assert stat.S_IMODE(home.stat().st_mode) == 0o700
            token = spawner.runtime_dir / "oidc" / "access_token"
            assert token.stat().st_uid == account.pw_uid
            assert stat.S_IMODE(token.stat().st_mode) == 0o600

        ben_token = ben.runtime_dir / "oidc" / "access_token"
        assert read_as(accounts[1].pw_uid, ben_token).stdout == "secret-of-acct-ben"
        refused = read_as(accounts[0].pw_uid, ben_token)
        assert refused.returncode != 0 and "Permission denied" in refused.stderr
        assert read_as(accounts[0].pw_uid, Path(ben.home_dir) / ".").returncode != 0

        # the profile's limits (small: 1 CPU, 2 GiB) in a cgroup the user cannot leave
        cgroups = Path(f"/proc/{ann.pid}/cgroup").read_text()
        probe = create_cgroup("kubelab-probe", 1 << 30, None)  # can this machine make one?
        if probe is not None:
            probe.remove()
        assert (ann._cgroup is not None) == (probe is not None)
        if ann._cgroup is not None:
            assert f"kubelab/{accounts[0].pw_name}" in cgroups
            v2 = ann._cgroup.version == "cgroup-v2"
            limit_file = "memory.max" if v2 else "memory.limit_in_bytes"
            memory = next(f for f in ann._cgroup.folders if (f / limit_file).exists())
            assert int((memory / limit_file).read_text()) == 2 * 1024**3
            moved = subprocess.run(
                ["sh", "-c", f"echo $$ > {memory.parent / 'cgroup.procs'}"],
                preexec_fn=lambda: os.setuid(accounts[0].pw_uid),
                capture_output=True,
                check=False,
            )
            assert moved.returncode != 0  # cannot move itself out
        identity = (ann.runtime_dir / "identity.json").read_text()
        assert '"limits"' in identity

        # a server that dies without stop() takes its tokens with it at the next poll
        os.kill(ann.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while await ann.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not (ann.runtime_dir / "oidc" / "access_token").exists()
    finally:
        for spawner in spawners:
            await spawner.stop(now=True)


@pytest.mark.asyncio
async def test_one_shared_account_refuses_a_second_user_unless_allowed(
    make_user: Any, users_root: Path
) -> None:
    traits = {**start_traits(users_root), "unix_accounts": False}
    first = await started(make_user, "shared-a", [], **traits)
    try:
        with pytest.raises(web.HTTPError) as refused:
            await started(make_user, "shared-b", [], **traits)
        assert refused.value.status_code == 409
        assert "allow_shared_account" in refused.value.jupyterhub_message
        second = await started(make_user, "shared-c", [], allow_shared_account=True, **traits)
        await second.stop(now=True)
    finally:
        await first.stop(now=True)


def test_account_names_are_valid_and_distinct() -> None:
    names = {account_name("kubelab-", n) for n in ("a.b", "a-b", "A_B", "x" * 80)}
    assert len(names) == 4
    assert all(len(n) <= 32 and n.startswith("kubelab-") for n in names)


# ---- through the real hub ----------------------------------------------------------


@pytest.fixture(scope="module")
def traversable() -> Iterator[None]:
    """Let users' accounts reach the interpreter and this checkout for the test's hub.

    The sandbox's Python lives under /root (0700); an admin would install kubelab
    where all users can read it. Traverse permission (o+x, not listing) is added to the
    folders that lack it and taken back afterwards."""
    import sys

    from .hub_stack import REPO

    changed: list[tuple[Path, int]] = []
    for path in (Path(os.path.realpath(sys.executable)), REPO):
        while (folder := unreachable(path)) is not None:
            mode = stat.S_IMODE(folder.stat().st_mode)
            changed.append((folder, mode))
            folder.chmod(mode | stat.S_IXOTH)
    yield
    for folder, mode in reversed(changed):
        folder.chmod(mode)


@needs_root
@pytest.mark.skipif(not CHP.exists(), reason=f"configurable-http-proxy missing: {CHP}")
def test_two_users_through_the_hub_run_as_different_accounts(traversable: None) -> None:
    base = Path(tempfile.mkdtemp(prefix="kubelab-hub-", dir="/tmp"))
    base.chmod(0o711)
    try:
        with running_hub(base / "hub", "--accounts", "require") as hub:
            run_two_users(hub)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_two_users(hub: HubStack) -> None:
    sessions: dict[str, requests.Session] = {}
    for user in ("alice", "bob"):
        session = oidc_login(hub, user)
        spawned = post_spawn(
            session, hub, user, {"profile": "small", "profile-option-small--image": "scipy"}
        )
        assert spawned.status_code == 302, error_text(spawned) or spawned.text[:500]
        wait_for_lab(session, hub, user)
        sessions[user] = session
    uids = {user: uid_of(singleuser_pid(hub.hub_dir, user)) for user in sessions}
    assert uids == {u: pwd.getpwnam(f"kubelab-{u}").pw_uid for u in sessions}
    assert uids["alice"] != uids["bob"]

    bob_token = hub.hub_dir / "runtime" / "bob" / "oidc" / "access_token"
    assert bob_token.stat().st_uid == uids["bob"]
    refused = read_as(uids["alice"], bob_token)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    for private in ("jupyterhub.sqlite", "jupyterhub_cookie_secret", "crypt_key"):
        assert read_as(uids["alice"], hub.hub_dir / private).returncode != 0, private

    # the server itself says how its limits are enforced
    status = sessions["alice"].get(f"{hub.url}/user/alice/kubelab/api/status", timeout=30)
    assert status.status_code == 200, status.text[:300]
    limits = status.json()["profile"]["limits"]
    assert limits["memory"] in ("cgroup-v1", "cgroup-v2", "rlimit")
    assert limits["cpu"] in ("cgroup-v1", "cgroup-v2", "advisory")
