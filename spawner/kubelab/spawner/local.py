"""LocalKubelabSpawner: the embedded default — same profiles, local processes.

Built on JupyterHub's SimpleLocalProcessSpawner: OIDC users have no system accounts,
so each user gets a home under a configurable root. When the hub runs as root, each
user's server runs as a Unix account of its own (`kubelab-<name>`, created on first
spawn, home 0700; see accounts.py), so users cannot read each other's files or tokens.
A hub that is not root runs every server as its own account: it then refuses a second
user's server unless the admin accepts that with `allow_shared_account` (unsafe).
What a profile enforces locally:

- GPUs: `CUDA_VISIBLE_DEVICES` (NVIDIA) / `HIP_VISIBLE_DEVICES` + `ROCR_VISIBLE_DEVICES`
  (AMD) set to GPUs allocated exclusively to this server; CPU-only profiles get an
  empty list so they never touch a GPU. MIG slices are Kubernetes-only.
- memory and cpu limits: a cgroup of the server's own (limits.py) when the hub is
  root and cgroups are writable — the user cannot lift them. Otherwise a hard
  `RLIMIT_AS` for memory (the user cannot raise it; allocations beyond it fail with
  MemoryError) and CPU affinity to ceil(limit) cores, which is advisory (a process
  may widen its own affinity). OMP/MKL/OpenBLAS thread counts follow the CPU limit.
  `/kubelab/api/status` says which applied.
- guarantees are not enforceable on a single machine and are only recorded.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import os
import resource
import shutil
import sys
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner, set_user_setuid
from kubespawner.slugs import safe_slug
from traitlets import Bool, Dict, List, Unicode, default

from . import accounts
from .gpu import GPUAllocator, detect_gpus
from .limits import Cgroup, create_cgroup, enforcement
from .mixin import KubelabProfilesMixin, _http_error
from .profiles import Profile, ProfilesConfig, cpu_to_float, memory_to_bytes
from .tokens import (
    ensure_private_dir,
    remove_token_files,
    write_identity_file,
    write_token_files,
)

_cpu_rotation = itertools.count()


def _hub_dir() -> Path:
    return Path(os.environ.get("KUBELAB_HUB_DIR", Path.cwd() / ".hub")).resolve()


def local_unavailable_reason(profile: Profile, gpu_ids: list[str], free: list[str]) -> str | None:
    """Why a profile cannot start on this machine now, or None (pure, for the form)."""
    if not profile.gpu_count:
        return None
    if profile.gpu_resource.startswith("nvidia.com/mig-"):
        return "MIG slices are only available on Kubernetes"
    if not gpu_ids:
        return "no GPU detected on this machine"
    if profile.gpu_count > len(gpu_ids):
        return f"needs {profile.gpu_count} GPUs, this machine has {len(gpu_ids)}"
    if profile.gpu_count > len(free):
        return f"all GPUs are in use ({len(free)} of {len(gpu_ids)} free)"
    return None


def render_local_form(
    config: ProfilesConfig, groups: set[str], gpu_ids: list[str], free: list[str]
) -> str:
    """HTML spawn form: allowed profiles, unavailable ones disabled with the reason."""
    rows: list[str] = []
    allowed = config.allowed_profiles(groups)
    available = [p for p in allowed if not local_unavailable_reason(p, gpu_ids, free)]
    chosen = next((p for p in available if p.default), available[0] if available else None)
    for profile in allowed:
        reason = local_unavailable_reason(profile, gpu_ids, free)
        slug = html.escape(profile.slug)
        options = "".join(
            f'<option value="{html.escape(i.name)}">{html.escape(i.display_name)}</option>'
            for i in config.images_for(profile)
        )
        rows.append(
            f'<div class="kubelab-profile{" disabled" if reason else ""}" '
            f'style="border:1px solid #ddd;border-radius:4px;padding:8px;margin:6px 0">'
            f'<label><input type="radio" name="profile" value="{slug}" '
            f'id="profile-{slug}"{" checked" if profile is chosen else ""}'
            f"{' disabled' if reason else ''}> <b>{html.escape(profile.display_name)}</b>"
            f"</label><div>{html.escape(profile.description)}</div>"
            + (
                f'<div class="kubelab-reason"><i>Unavailable: {html.escape(reason)}</i></div>'
                if reason
                else ""
            )
            + f'<label>Image <select name="profile-option-{slug}--image"'
            f"{' disabled' if reason else ''}>{options}</select></label></div>"
        )
    if not rows:
        return "<p>No profile is available to your groups. Ask an administrator.</p>"
    return '<div id="kubelab-profiles">' + "".join(rows) + "</div>"


class LocalKubelabSpawner(KubelabProfilesMixin, SimpleLocalProcessSpawner):
    """Local single-user servers with kubelab profiles, identity and OIDC token files."""

    home_dir_template = Unicode(
        config=True,
        help=(
            "Home of each user's server; {username} is expanded. Defaults to "
            "$KUBELAB_HUB_DIR/home/{username} ($KUBELAB_HUB_DIR defaults to ./.hub)."
        ),
    )

    @default("home_dir_template")
    def _default_home_template(self) -> str:
        return str(_hub_dir() / "home" / "{username}")

    runtime_dir_template = Unicode(
        config=True,
        help=(
            "Private (0700) per-user dir outside the home for the identity file and the "
            "OIDC token files (0600); {username} is expanded. Defaults to "
            "$KUBELAB_HUB_DIR/runtime/{username}."
        ),
    )

    @default("runtime_dir_template")
    def _default_runtime_template(self) -> str:
        return str(_hub_dir() / "runtime" / "{username}")

    gpu_ids = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help=(
            "GPU ids this hub may hand out (e.g. ['0', '1']). Default: detected with "
            "`nvidia-smi -L`; empty when there is none, and GPU profiles are then shown "
            "disabled. Each running server gets its own GPUs, never shared."
        ),
    )

    welcome_notebooks = List(
        Unicode(),
        config=True,
        help="Files copied into a new user's home on first spawn (e.g. examples/demo.ipynb).",
    )

    default_lab_settings = Dict(
        config=True,
        help=(
            "JupyterLab user settings written into a home that lacks them, keyed by "
            "plugin id, e.g. {'@jupyterlab/apputils-extension:notification': "
            "{'fetchNews': 'false'}} to skip the news pop-up. Users can change them later."
        ),
    )

    enforce_limits = Bool(
        True,
        config=True,
        help=(
            "Apply the profile's memory and CPU limits: a cgroup per server when the hub "
            "is root and cgroups are writable, else RLIMIT_AS and CPU affinity."
        ),
    )

    unix_accounts = Bool(
        True,
        config=True,
        help=(
            "When the hub runs as root, run each user's server as a Unix account of its "
            "own (account_prefix + name, created with useradd on first spawn, home mode "
            "0700), so users cannot read each other's files, token files or the hub's "
            "state. The Python environment and kubelab must then be readable by other "
            "users (a spawn names the folder that is not). Ignored when not root."
        ),
    )

    account_prefix = Unicode(
        "kubelab-",
        config=True,
        help="Prefix of the Unix account names made for hub users (kubelab-alice).",
    )

    allow_shared_account = Bool(
        False,
        config=True,
        help=(
            "UNSAFE. Let servers of several users run at once under one Unix account "
            "(the hub's), when the hub is not root or unix_accounts is off. Each user can "
            "then read every other user's files and OIDC tokens. Without it, such a hub "
            "refuses a second user's server while one runs."
        ),
    )

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return [sys.executable, "-m", "jupyterhub.singleuser"]

    @default("default_url")
    def _default_url(self) -> str:
        return "/lab"

    @default("options_form")
    def _default_options_form(self) -> Any:
        return self._render_form

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return self.kubelab_options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return self.kubelab_apply_user_options

    _gpus: list[str]
    _account: Any = None  # pwd entry of the user's own Unix account, when it has one
    _cgroup: Cgroup | None = None
    # Users whose servers run under the hub's own account, for the shared-account rule.
    _shared_account_users: set[str] = set()

    @property
    def _detected_gpu_ids(self) -> list[str]:
        if self.gpu_ids is None:
            self.gpu_ids = detect_gpus()
        return list(self.gpu_ids)

    @property
    def gpu_allocator(self) -> GPUAllocator:
        return GPUAllocator.shared(self._detected_gpu_ids)

    @property
    def _owner(self) -> str:
        return f"{self.user.name}/{self.name}"

    @property
    def runtime_dir(self) -> Path:
        return Path(self.runtime_dir_template.format(username=safe_slug(self.user.name)))

    @default("home_dir")
    def _default_home_dir(self) -> str:
        # usernames come from the OIDC provider: keep them inside the root, and distinct
        # ("a.b" and "a-b" must not share a home), as KubeSpawner's safe slugs do
        return self.home_dir_template.format(username=safe_slug(self.user.name))

    async def _render_form(self, spawner: Any) -> str:
        allocator = self.gpu_allocator
        free = [g for g in allocator.free()] + allocator.owned(self._owner)
        return render_local_form(
            self.kubelab_profiles, await self.kubelab_groups(), self._detected_gpu_ids, free
        )

    async def kubelab_apply_user_options(self, spawner: Any, user_options: dict[str, Any]) -> None:
        await super().kubelab_apply_user_options(spawner, user_options)
        assert self.kubelab_profile is not None
        allocator = self.gpu_allocator
        reason = local_unavailable_reason(
            self.kubelab_profile,
            self._detected_gpu_ids,
            allocator.free() + allocator.owned(self._owner),
        )
        if reason:
            slug = self.kubelab_profile.slug
            raise _http_error(409, f"Profile {slug!r} is unavailable: {reason}.")

    # ---- start / stop -------------------------------------------------------------

    def _prepare_home(self) -> None:
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        settings_root = home / ".jupyter" / "lab" / "user-settings"
        for plugin_id, settings in self.default_lab_settings.items():
            package, _, plugin = plugin_id.partition(":")
            target = settings_root / package / f"{plugin}.jupyterlab-settings"
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(settings, indent=2))
        # each welcome file is copied once per home: a user who deletes it keeps it deleted
        ledger = home / ".kubelab-welcome.json"
        copied: list[str] = json.loads(ledger.read_text()) if ledger.exists() else []
        for source in self.welcome_notebooks:
            src = Path(source)
            if src.is_file() and src.name not in copied:
                if not (home / src.name).exists():
                    (home / src.name).write_bytes(src.read_bytes())
                copied.append(src.name)
        ledger.write_text(json.dumps(copied))

    @property
    def separate_accounts(self) -> bool:
        return self.unix_accounts and os.geteuid() == 0

    @property
    def _file_owner(self) -> tuple[int, int] | None:
        account = self._account
        return (account.pw_uid, account.pw_gid) if account is not None else None

    def _prepare_account(self) -> None:
        """Create the user's account and check that it can reach what its server runs."""
        name = accounts.account_name(self.account_prefix, self.user.name)
        home = Path(self.home_dir)
        try:
            self._account = accounts.ensure_account(name, home)
        except RuntimeError as error:
            raise _http_error(500, f"Cannot create the Unix account {name}: {error}") from None
        import kubelab

        for root in (home.parent, self.runtime_dir.parent):
            if not root.exists():  # users may enter it, not list it (mkdir's mode is masked)
                root.mkdir(parents=True)
                root.chmod(0o711)
        interpreter = shutil.which(self.cmd[0]) or self.cmd[0]
        needed = [home, Path(os.path.realpath(interpreter)), *map(Path, kubelab.__path__)]
        for path in needed:
            folder = accounts.unreachable(path)
            if folder is not None:
                raise _http_error(
                    500,
                    f"The server of {self.user.name} runs as the Unix account {name}, which "
                    f"cannot enter {folder} (on the way to {path}). Give other users "
                    f"traverse permission there (chmod o+x {folder}) or install kubelab "
                    "where every user can read it.",
                )

    def _check_shared_account(self) -> None:
        others = self._shared_account_users - {self.user.name}
        if others and not self.allow_shared_account:
            raise _http_error(
                409,
                "This hub runs every server under one Unix account (it is not root, or "
                "unix_accounts is off), and a server of another user is running: users "
                "would read each other's files and tokens. An admin can accept that with "
                "c.LocalKubelabSpawner.allow_shared_account = True (unsafe).",
            )

    def _limits(self) -> tuple[int | None, float | None]:
        profile = self.kubelab_profile
        if profile is None or not self.enforce_limits:
            return None, None
        memory = memory_to_bytes(profile.memory_limit) if profile.memory_limit else None
        cpu = cpu_to_float(profile.cpu_limit) if profile.cpu_limit else None
        return memory, cpu

    async def start(self) -> Any:
        if self.kubelab_profile is None:  # start() without apply_user_options (old hubs)
            await self.kubelab_apply_user_options(self, self.user_options or {})
        profile = self.kubelab_profile
        assert profile is not None
        if self.separate_accounts:
            self._prepare_account()
        else:
            self._check_shared_account()
        if profile.gpu_count:
            try:
                self._gpus = self.gpu_allocator.allocate(self._owner, profile.gpu_count)
            except RuntimeError as error:
                raise _http_error(409, f"Cannot start {profile.slug!r}: {error}") from None
        else:
            self.gpu_allocator.release(self._owner)
            self._gpus = []
        self._prepare_home()
        owner = self._file_owner
        if self._account is not None:
            accounts.private_home(Path(self.home_dir), self._account)
        ensure_private_dir(self.runtime_dir, owner)
        memory, cpu = self._limits()
        if self._account is not None:
            self._cgroup = create_cgroup(self._account.pw_name, memory, cpu)
        identity = await self.kubelab_identity()
        identity["limits"] = enforcement(self._cgroup, memory, cpu).to_json()
        write_identity_file(self.runtime_dir / "identity.json", identity, owner)
        await self.kubelab_sync_tokens(initial=True)
        try:
            started = await super().start()
        except BaseException:
            self.gpu_allocator.release(self._owner)
            raise
        if self._account is None:
            self._shared_account_users.add(self.user.name)
        return started

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            self._server_gone()

    def _server_gone(self) -> None:
        """What a server leaves behind goes with it: GPUs, tokens, its cgroup."""
        self.gpu_allocator.release(self._owner)
        remove_token_files(self.runtime_dir / "oidc")
        self._shared_account_users.discard(self.user.name)
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None

    async def poll(self) -> int | None:
        status = await super().poll()
        if status is None:
            try:
                await self.kubelab_sync_tokens()
            except Exception:
                self.log.exception("kubelab: could not refresh tokens for %s", self.user.name)
        else:
            # The server died without stop() (killed, crashed, out of memory): JupyterHub
            # does not call stop() then, so its tokens must not stay behind.
            self._server_gone()
        return status

    async def deliver_tokens(self, tokens: dict[str, str]) -> None:
        write_token_files(self.runtime_dir / "oidc", tokens, self._file_owner)

    # ---- state (survives hub restarts) ---------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.pid:
            self.kubelab_state(state)
            if getattr(self, "_gpus", None):
                state["kubelab_gpus"] = list(self._gpus)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.kubelab_load_state(state)
        if state.get("kubelab_gpus"):
            self._gpus = list(state["kubelab_gpus"])
            self.gpu_allocator.restore(self._owner, self._gpus)
        if self.pid and self.separate_accounts:
            # a hub restart: keep writing refreshed tokens as the account's files
            import pwd

            name = accounts.account_name(self.account_prefix, self.user.name)
            try:
                self._account = pwd.getpwnam(name)
            except KeyError:
                self._account = None
        elif self.pid:
            self._shared_account_users.add(self.user.name)

    # ---- environment and limits ------------------------------------------------------

    def get_args(self) -> list[str]:
        args = super().get_args()
        args.append("--ServerApp.jpserver_extensions=kubelab.server=True")
        if os.geteuid() == 0:
            args.append("--allow-root")
        return args

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        runtime = self.runtime_dir
        if self._account is not None:
            env["USER"] = env["LOGNAME"] = self._account.pw_name
        env["KUBELAB_IDENTITY_FILE"] = str(runtime / "identity.json")
        env["KUBELAB_TOKEN_DIR"] = str(runtime / "oidc")  # a path; the tokens stay in files
        profile = self.kubelab_profile
        gpus = ",".join(getattr(self, "_gpus", []))
        if profile is not None and profile.gpu_resource == "amd.com/gpu" and profile.gpu_count:
            env["HIP_VISIBLE_DEVICES"] = env["ROCR_VISIBLE_DEVICES"] = gpus
            env["CUDA_VISIBLE_DEVICES"] = ""
        else:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        if profile is not None:
            env["KUBELAB_PROFILE"] = profile.slug
            if profile.cpu_limit:
                threads = str(max(1, math.ceil(cpu_to_float(profile.cpu_limit))))
                for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                    env[name] = threads
            if profile.memory_limit:
                env["MALLOC_ARENA_MAX"] = "2"  # keeps glibc's address space use near real use
        return env

    def make_preexec_fn(self, name: str) -> Any:
        """Limits first (cgroup, rlimit, affinity), as root; then become the account."""
        chdir_home = super().make_preexec_fn(name)  # this hub's home for the user
        if self._account is not None:
            setuid = set_user_setuid(self._account.pw_name, chdir=False)

            def become_user() -> None:
                setuid()
                chdir_home()

        else:
            become_user = chdir_home
        memory, cpu = self._limits()
        cgroup = self._cgroup
        in_cgroup = enforcement(cgroup, memory, cpu)
        cpus: set[int] | None = None
        if cpu and hasattr(os, "sched_setaffinity"):
            available = sorted(os.sched_getaffinity(0))
            wanted = max(1, math.ceil(cpu))
            if wanted < len(available):
                start = next(_cpu_rotation) * wanted
                cpus = {available[(start + i) % len(available)] for i in range(wanted)}

        def preexec() -> None:
            if cgroup is not None:
                cgroup.join()
            if memory and in_cgroup.memory == "rlimit":
                resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            if cpus:
                os.sched_setaffinity(0, cpus)
            become_user()

        return preexec
