#!/usr/bin/env python3
"""Start the local kubelab demo: an OIDC provider (oidc-provider-mock) and JupyterHub.

    .venv/bin/python deploy/local/run_hub.py            # http://127.0.0.1:8000

Both run until Ctrl-C / SIGTERM, which stops the hub (and every user's server) and the
provider. State lives in .hub/ (gitignored): database, cookie secret, the generated
JUPYTERHUB_CRYPT_KEY (never printed), homes and per-user token files.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def crypt_key(hub_dir: Path) -> str:
    """Create once, keep in .hub/ with mode 0600: it decrypts every user's tokens."""
    path = hub_dir / "crypt_key"
    if not path.exists():
        hub_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def shared_account(mode: str, hub_dir: Path) -> bool:
    """Whether every user's server runs as this process's account (see --accounts)."""
    if mode == "shared" or os.geteuid() != 0:
        if os.geteuid() != 0 and mode == "require":
            raise SystemExit("kubelab: --accounts require needs the hub to run as root")
        return True
    from kubelab.spawner.accounts import unreachable

    needed = [hub_dir / "home", Path(os.path.realpath(sys.executable)), REPO]
    blocked = next(((f, p) for p in needed if (f := unreachable(p)) is not None), None)
    if blocked is None:
        return False
    folder, path = blocked
    message = (
        f"users' own Unix accounts cannot enter {folder} (on the way to {path}); "
        f"`chmod o+x {folder}` allows it"
    )
    if mode == "require":
        raise SystemExit(f"kubelab: {message}")
    print(
        f"\n  WARNING: {message}. This demo runs every user's server as root instead:\n"
        "  users can read each other's files and tokens (see docs/security.md).\n",
        file=sys.stderr,
        flush=True,
    )
    return True


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kubelab: {proc.args[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.HTTPError, OSError):  # the proxy answers 404 before the hub is up
            time.sleep(0.2)
    raise SystemExit(f"kubelab: {url} did not answer within {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("KUBELAB_HUB_PORT", 8000)))
    parser.add_argument("--oidc-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--hub-dir", default=os.environ.get("KUBELAB_HUB_DIR", REPO / ".hub"))
    parser.add_argument(
        "--profiles",
        default=os.environ.get("KUBELAB_PROFILES_FILE", REPO / "deploy" / "profiles.example.yaml"),
    )
    parser.add_argument("--users", default=HERE / "demo_users.json", help="demo OIDC users")
    parser.add_argument(
        "--token-max-age", type=int, default=3600, help="OIDC access token lifetime (s)"
    )
    parser.add_argument("--gpu-ids", default=None, help='e.g. "0,1" (default: nvidia-smi -L)')
    parser.add_argument(
        "--accounts",
        choices=["auto", "require", "shared"],
        default=os.environ.get("KUBELAB_ACCOUNTS", "auto"),
        help=(
            "as root, run each user's server as a Unix account of its own: 'require' fails "
            "when that cannot work here, 'auto' (default) falls back to one shared account "
            "with a warning, 'shared' always shares (unsafe: users can read each other's files)"
        ),
    )
    parser.add_argument("--debug", action="store_true", help="JupyterHub debug logging")
    args = parser.parse_args(argv)

    hub_dir = Path(args.hub_dir).resolve()
    hub_dir.mkdir(parents=True, exist_ok=True)
    users = json.loads(Path(args.users).read_text())
    oidc_port = args.oidc_port or free_port()
    oidc_url = f"http://127.0.0.1:{oidc_port}"
    bin_dir = Path(sys.executable).parent

    oidc_cmd = [
        str(bin_dir / "oidc-provider-mock"),
        "--port",
        str(oidc_port),
        "--token-max-age",
        str(args.token_max_age),
    ]
    for user in users:
        oidc_cmd += ["--user-claims", json.dumps(user)]

    env = dict(os.environ)
    env.update(
        KUBELAB_HUB_IP=args.ip,
        KUBELAB_HUB_PORT=str(args.port),
        KUBELAB_HUB_API_PORT=str(free_port()),
        KUBELAB_PROXY_API_PORT=str(free_port()),
        KUBELAB_HUB_DIR=str(hub_dir),
        KUBELAB_OIDC_URL=oidc_url,
        KUBELAB_PROFILES_FILE=str(Path(args.profiles).resolve()),
        JUPYTERHUB_CRYPT_KEY=crypt_key(hub_dir),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
    )
    env.setdefault("KUBELAB_CHP", str(REPO / ".hub/chp/node_modules/.bin/configurable-http-proxy"))
    if args.gpu_ids is not None:
        env["KUBELAB_GPU_IDS"] = args.gpu_ids
    env["KUBELAB_SHARED_ACCOUNT"] = "1" if shared_account(args.accounts, hub_dir) else ""
    hub_cmd = [
        str(bin_dir / "jupyterhub"),
        "-f",
        str(HERE / "jupyterhub_config.py"),
        *(["--debug"] if args.debug else []),
    ]

    children: list[subprocess.Popen[bytes]] = []

    def stop(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        oidc = subprocess.Popen(oidc_cmd, env=env, cwd=hub_dir)
        children.append(oidc)
        wait_http(f"{oidc_url}/.well-known/openid-configuration", 30, oidc)
        # umask 077: the hub's database and secrets are its own; servers inherit it, so
        # what a user creates stays private to that user unless shared on purpose
        hub = subprocess.Popen(hub_cmd, env=env, cwd=hub_dir, umask=0o077)
        children.append(hub)
        # the hub's own port first: asking the proxy earlier only makes it log errors
        wait_http(f"http://127.0.0.1:{env['KUBELAB_HUB_API_PORT']}/hub/api", 60, hub)
        wait_http(f"http://{args.ip}:{args.port}/hub/api", 30, hub)
        logins = "\n".join(
            f"    {u['preferred_username']:<8} groups: {', '.join(u['groups']) or '(none)'}"
            for u in users
        )
        print(
            f"\n  kubelab is running:  http://{args.ip}:{args.port}\n"
            f"  Sign in with the demo OIDC provider ({oidc_url}); click a user:\n{logins}\n"
            f"  (any other name also signs in, with no groups)\n  Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            for child in children:
                if child.poll() is not None:
                    raise SystemExit(f"kubelab: {child.args[0]} exited ({child.returncode})")
            time.sleep(0.5)
    except SystemExit as exit_:
        for child in reversed(children):  # hub first: it stops the users' servers
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
        if exit_.code not in (None, 0):
            print(exit_.code, file=sys.stderr)
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main())
