"""Unix accounts for users' servers when the hub runs as root.

As The Littlest JupyterHub does with `jupyter-<name>`, each hub user gets a system
account of their own (`kubelab-<name>`), created on first spawn, whose server runs with
that uid and a home of mode 0700: users cannot read each other's files or token files,
nor the hub's database and keys (0600, the hub's own).

The account can only run what it can reach: every folder above its home, the Python
interpreter and kubelab's source must be traversable by other users. `unreachable()`
finds the first folder that is not, so the spawner can say which one to fix.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

from kubespawner.slugs import safe_slug

# useradd refuses longer names on most systems.
MAX_NAME = 32


def account_name(prefix: str, username: str) -> str:
    """`kubelab-alice`; hub names that are not valid Unix names get KubeSpawner's safe
    slug (lowercase, dashes, a hash suffix when changed), so distinct users stay distinct."""
    return prefix + safe_slug(username, max_length=MAX_NAME - len(prefix))


def ensure_account(name: str, home: Path) -> pwd.struct_passwd:
    """The account `name` with `home` as its home, created if missing (no login shell)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    done = subprocess.run(
        ["useradd", "--home-dir", str(home), "--no-create-home", "--user-group",
         "--shell", "/usr/sbin/nologin", "--comment", "kubelab user", name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0 and "already exists" not in done.stderr:
        raise RuntimeError(f"useradd {name} failed: {done.stderr.strip()}")
    return pwd.getpwnam(name)


def private_home(home: Path, account: pwd.struct_passwd) -> None:
    """The home exists, belongs to the account and only it can enter (0700).

    Files copied in by the hub (welcome notebooks, lab settings) are handed over too."""
    home.mkdir(parents=True, exist_ok=True)
    for path in [home, *home.rglob("*")]:
        info = path.lstat()
        if info.st_uid != account.pw_uid and not stat.S_ISLNK(info.st_mode):
            os.chown(path, account.pw_uid, account.pw_gid)
    home.chmod(0o700)


def unreachable(path: Path) -> Path | None:
    """The first folder on the way to `path` that other users cannot traverse, else None."""
    for folder in [*reversed(path.parents)]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            return folder
    return None
