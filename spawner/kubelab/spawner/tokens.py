"""OIDC tokens from GenericOAuthenticator's auth_state, delivered as files and kept fresh.

Tokens never go into environment variables (visible in /proc/<pid>/environ, `ps e`, crash
reports) nor into logs or URLs: locally they are 0600 files in a 0700 runtime dir, on
Kubernetes a Secret mounted as files. When the hub refreshes the user, the spawner
rewrites the files / patches the Secret so long-running servers keep a valid token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
from inspect import isawaitable
from pathlib import Path
from typing import Any

from .objects import TOKEN_FILES

EXPIRES_AT_KEY = "kubelab_token_expires_at"


def tokens_from_auth_state(auth_state: dict[str, Any] | None) -> dict[str, str]:
    if not auth_state:
        return {}
    return {k: auth_state[k] for k in TOKEN_FILES if isinstance(auth_state.get(k), str)}


def token_fingerprint(tokens: dict[str, str]) -> str:
    """A digest to notice changed tokens without keeping or logging the values."""
    return hashlib.sha256(json.dumps(tokens, sort_keys=True).encode()).hexdigest()[:16]


# (uid, gid) that files are handed to: the user's own Unix account, when it has one.
Owner = tuple[int, int] | None


def _atomic_write(path: Path, text: str, mode: int, owner: Owner = None) -> None:
    # write-then-rename so a reader never sees a half-written token
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_private_dir(path: Path, owner: Owner = None) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    if owner is not None:
        os.chown(path, *owner)
    return path


def write_token_files(directory: Path, tokens: dict[str, str], owner: Owner = None) -> None:
    """One file per token, mode 0600, replaced atomically.

    A token missing from `tokens` keeps its file: providers often omit the id_token
    from refresh responses, and the last one still names the user.
    """
    ensure_private_dir(directory, owner)
    for name in TOKEN_FILES:
        if tokens.get(name):
            _atomic_write(directory / name, tokens[name], 0o600, owner)


def remove_token_files(directory: Path) -> None:
    """When the server stops, its tokens go too."""
    for name in TOKEN_FILES:
        (directory / name).unlink(missing_ok=True)


def write_identity_file(path: Path, identity: dict[str, Any], owner: Owner = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, json.dumps(identity, indent=2, sort_keys=True), 0o644, owner)


def _jwt_exp(token: str | None) -> float | None:
    if not token or token.count(".") != 2:
        return None
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return None


def token_expires_at(auth_state: dict[str, Any] | None) -> float | None:
    """When the access token expires: JWT `exp`, else the stamp set at issue time."""
    if not auth_state:
        return None
    return _jwt_exp(auth_state.get("access_token")) or auth_state.get(EXPIRES_AT_KEY)


def stamp_token_expiry(authenticator: Any, auth_state: dict[str, Any]) -> dict[str, Any]:
    """`modify_auth_state_hook`: record when an opaque access token expires (expires_in)."""
    expires_in = (auth_state.get("token_response") or {}).get("expires_in")
    if isinstance(expires_in, int | float):
        auth_state[EXPIRES_AT_KEY] = time.time() + float(expires_in)
    return auth_state


async def refresh_tokens_now(authenticator: Any, user: Any, auth_state: dict[str, Any]) -> Any:
    """Run the refresh_token grant through OAuthenticator's public API; return an auth model."""
    refresh_token = auth_state.get("refresh_token")
    if not refresh_token:
        return None
    params = authenticator.build_refresh_token_request_params(refresh_token)
    token_info = await authenticator.get_token_info(None, params)
    if not token_info.get("refresh_token"):
        token_info["refresh_token"] = refresh_token
    if not token_info.get("id_token") and auth_state.get("id_token"):
        token_info["id_token"] = auth_state["id_token"]  # refresh responses may omit it
    user_info = await authenticator.token_to_user(token_info)
    new_state = authenticator.build_auth_state_dict(token_info, user_info)
    if isawaitable(new_state):
        new_state = await new_state
    new_state = stamp_token_expiry(authenticator, new_state)
    model: dict[str, Any] = {"name": user.name, "auth_state": new_state}
    model = await authenticator.update_auth_model(model)
    if getattr(authenticator, "manage_groups", False):
        model["groups"] = sorted(await authenticator.get_user_groups(new_state))
    return model


def make_refresh_user_hook(margin_seconds: float = 300):
    """`refresh_user_hook` for OAuthenticator: renew tokens that expire within the margin.

    OAuthenticator alone only renews a token once the provider has rejected it; the
    notebook server needs one that is still valid, so we renew ahead of expiry.
    """

    async def refresh_expiring_tokens(authenticator: Any, user: Any, auth_state: Any) -> Any:
        expires_at = token_expires_at(auth_state)
        if not auth_state or expires_at is None or expires_at - time.time() > margin_seconds:
            return None  # let OAuthenticator do its usual check
        try:
            return await refresh_tokens_now(authenticator, user, auth_state) or None
        except Exception as error:  # the provider said no: ask the user to log in again
            authenticator.log.info("kubelab: token refresh for %s failed: %s", user.name, error)
            return False

    return refresh_expiring_tokens
