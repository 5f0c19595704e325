"""What a run started from, captured when it starts: the facts its lineage records.

* snapshots: a notebook, a pipeline file, the compiled IR and each step's code are
  copied once into a content-addressed folder (`<home>/snapshots`), named by their
  sha256, so a later edit of the file does not lose what ran;
* git: the commit of the repository holding the source and whether the file differs
  from it (dirty);
* environment: the Python version and the installed distributions, digested (the
  list itself is stored once per distinct digest, in the lineage store);
* user: the identity the kubelab spawner wrote (OIDC user and groups), else the
  JupyterHub or login user.

Plain functions, cheap enough for every run (a few milliseconds: the distributions
are read from `*.dist-info` folder names, git runs only inside a repository).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelab.client.lineage import ArtifactRecord

# Written by the kubelab spawners: non-secret identity (user, groups, profile) as JSON.
IDENTITY_FILE_ENV = "KUBELAB_IDENTITY_FILE"

_DIST = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+?)\.(dist-info|egg-info)$")


def read_spawner_identity() -> dict[str, Any]:
    """Re-read on each call: the spawner may rewrite the file while the server runs."""
    path = os.environ.get(IDENTITY_FILE_ENV)
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def current_user() -> dict[str, Any]:
    """`{user, groups?, image?}`: the OIDC identity from the spawner when there is one."""
    identity = read_spawner_identity()
    user = identity.get("user") or os.environ.get("JUPYTERHUB_USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    found: dict[str, Any] = {"user": user}
    if identity.get("groups"):
        found["groups"] = list(identity["groups"])
    profile = identity.get("profile")
    if isinstance(profile, dict) and profile.get("image"):
        found["image"] = profile["image"]
    return found


# -- content-addressed snapshots ------------------------------------------------------


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def snapshot_path(home: str | os.PathLike[str], digest: str, suffix: str = "") -> Path:
    """Where the snapshot with this digest lives (`snapshots/ab/<hex><suffix>`)."""
    hexdigest = digest.split(":", 1)[-1]
    return Path(home) / "snapshots" / hexdigest[:2] / f"{hexdigest}{suffix}"


def snapshot_bytes(home: str | os.PathLike[str], data: bytes, suffix: str = "") -> tuple[str, Path]:
    """Keep `data` once under its digest; returns (digest, path). Written atomically and
    read-only, so a snapshot never changes once it exists."""
    digest = sha256_digest(data)
    path = snapshot_path(home, digest, suffix)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
    return digest, path


def snapshot_text(
    home: str | os.PathLike[str], text: str, suffix: str = ".txt"
) -> tuple[str, Path]:
    return snapshot_bytes(home, text.encode(), suffix)


def read_snapshot(home: str | os.PathLike[str], digest: str, suffix: str = "") -> bytes | None:
    try:
        return snapshot_path(home, digest, suffix).read_bytes()
    except OSError:
        return None


# -- git ------------------------------------------------------------------------------


def _repository_of(path: Path) -> Path | None:
    for folder in [path.parent, *path.parent.parents]:
        if (folder / ".git").exists():
            return folder
    return None


def git_state(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """`{commit, dirty, repository}` when `path` is in a git work tree, else None.

    `dirty`: the file differs from the commit (changed, staged or untracked), which is
    what matters for reproducing it.
    """
    file = Path(path).resolve()
    repository = _repository_of(file)
    if repository is None:
        return None

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(repository), *args],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "--verify", "-q", "HEAD")
    if commit is None:
        return None  # no git, or a repository without commits
    status = git("status", "--porcelain=v1", "--untracked-files=all", "--", str(file))
    return {
        "commit": commit.strip(),
        "dirty": bool(status and status.strip()),
        "repository": str(repository),
    }


# -- the Python environment -------------------------------------------------------------


def _normal_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions() -> list[str]:
    """`name==version` of every installed distribution on sys.path, sorted.

    Read from the `*.dist-info` / `*.egg-info` folder names (what pip writes), which
    takes a few milliseconds where `importlib.metadata` takes half a second.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            match = _DIST.match(name)
            if match:
                found.setdefault(_normal_name(match["name"]), match["version"])
    return sorted(f"{name}=={version}" for name, version in found.items())


# (sys.path entry, its mtime) -> the environment read then: installing or removing a
# distribution changes its folder's mtime.
_environment_memo: dict[tuple[tuple[str, int], ...], dict[str, Any]] = {}


def environment() -> dict[str, Any]:
    """`{digest, python, implementation, platform, distributions}` of this interpreter."""
    key = []
    for entry in sys.path:
        try:
            key.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    memo_key = tuple(key)
    if memo_key not in _environment_memo:
        facts = {
            "python": platform.python_version(),
            "implementation": sys.implementation.name,
            "platform": f"{sys.platform}-{platform.machine()}",
            "distributions": distributions(),
        }
        facts["digest"] = sha256_digest(json.dumps(facts, sort_keys=True).encode())
        _environment_memo.clear()
        _environment_memo[memo_key] = facts
    return dict(_environment_memo[memo_key])


# -- the notebook's code, per step ------------------------------------------------------

PRELUDE_TAGS = ("imports", "functions")


def notebook_cells(notebook: dict[str, Any]) -> tuple[dict[int, str], list[int]]:
    """(index -> source of each code cell, indexes of the prelude cells that every step
    runs first), with indexes among all cells as Jupyter and the sidebar count them."""
    sources: dict[int, str] = {}
    prelude: list[int] = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        sources[index] = "".join(source) if isinstance(source, list) else str(source)
        tags = cell.get("metadata", {}).get("tags", []) or []
        if any(tag in PRELUDE_TAGS for tag in tags):
            prelude.append(index)
    return sources, prelude


def step_code(sources: dict[int, str], prelude: list[int], cells: list[int]) -> str:
    """The code a notebook step runs, cell by cell, as a diff shows it."""
    parts = []
    for index in sorted(set(prelude) | set(cells)):
        if index in sources:
            parts.append(f"# cell {index}\n{sources[index].rstrip()}\n")
    return "\n".join(parts)


# -- experiments --------------------------------------------------------------------------

DEFAULT_EXPERIMENT = "Default"  # KFP's name for runs started without one


def default_experiment(source: str | os.PathLike[str] | None) -> str:
    """Runs of one notebook or pipeline file share an experiment, named by the file's
    path under the home folder (where JupyterLab's root usually is), so it is the same
    whichever folder the run was started from; runs without a file go to "Default"."""
    if not source:
        return DEFAULT_EXPERIMENT
    path = Path(source).resolve()
    try:
        return path.relative_to(Path.home().resolve()).as_posix()
    except ValueError:
        return str(path)


# -- a run's facts, as lineage records them ------------------------------------------------


def capture(
    home: str | os.PathLike[str],
    *,
    source: str | os.PathLike[str] | None = None,
    content: bytes | None = None,
    suffix: str | None = None,
    git: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, ArtifactRecord]]:
    """(properties, facts) of a run starting now: the user, the source's path and git
    state as properties; the source snapshot and the environment as artifacts.

    `content` is what ran when it is not the file's current bytes (a reproduction
    runs the original snapshot; a job runs a function's code); `git` then says
    which commit it came from.
    """
    from kubelab.client.lineage import ENVIRONMENT, SOURCE, ArtifactRecord

    properties: dict[str, Any] = dict(current_user())
    facts: dict[str, ArtifactRecord] = {}
    path = Path(source).resolve() if source else None
    if content is None and path is not None and path.is_file():
        content = path.read_bytes()
        git = git_state(path)
    if content is not None:
        suffix = (suffix if suffix is not None else path.suffix if path else "").lower()
        digest, snapshot = snapshot_bytes(home, content, suffix)
        name = path.name if path else f"source{suffix}"
        facts["source"] = ArtifactRecord(
            SOURCE, str(snapshot), digest, name, {"format": suffix.lstrip(".")}
        )
        if path is not None:
            properties["source_path"] = str(path)
        if git:
            properties["git"] = git
    env = environment()
    facts["environment"] = ArtifactRecord(
        ENVIRONMENT, "", env.pop("digest"), f"python {env['python']}", env
    )
    return properties, facts
