"""What both kubelab spawners share: the profiles file, group gating, identity and tokens."""

from __future__ import annotations

import os
import time
from functools import reduce
from pathlib import Path
from typing import Any

from tornado import web
from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable

from .objects import make_identity
from .profiles import (
    ChoiceError,
    Image,
    Profile,
    ProfilesConfig,
    ProfilesError,
    load_profiles,
)
from .tokens import (
    refresh_tokens_now,
    token_expires_at,
    token_fingerprint,
    tokens_from_auth_state,
)


def _http_error(status: int, message: str) -> web.HTTPError:
    error = web.HTTPError(status, message)
    error.jupyterhub_message = message  # JupyterHub shows this text on the spawn page
    return error


class KubelabProfilesMixin(LoggingConfigurable):
    """Mixed into a JupyterHub Spawner (KubeSpawner or LocalProcessSpawner)."""

    profiles_file = Unicode(
        config=True,
        help=(
            "Path of the admin profiles YAML (images and profiles; see "
            "deploy/profiles.example.yaml and docs/spawner.md). Defaults to "
            "$KUBELAB_PROFILES_FILE. Validated against the kubelab JSON Schema: call "
            "check_profiles_file_or_exit in the hub config so a bad file stops the hub "
            "with the field named; a file broken later refuses spawns (details logged)."
        ),
    )

    @default("profiles_file")
    def _default_profiles_file(self) -> str:
        return os.environ.get("KUBELAB_PROFILES_FILE", "")

    groups_auth_state_key = Unicode(
        "oauth_user.groups",
        config=True,
        help=(
            "Dotted key into the OAuthenticator auth_state whose list adds to the user's "
            "JupyterHub groups when gating profiles (e.g. 'oauth_user.groups' for an OIDC "
            "'groups' claim). Hub groups managed by OAuthenticator (manage_groups=True) "
            "always count. Empty string: use hub groups only."
        ),
    )

    token_refresh_margin = Float(
        300.0,
        config=True,
        help=(
            "When the hub polls a running server and the user's OIDC access token expires "
            "within this many seconds, renew it with the refresh token so the notebook "
            "server always holds a valid token. 0 disables proactive renewal."
        ),
    )

    _profiles_cache: tuple[str, float, ProfilesConfig] | None = None
    kubelab_profile: Profile | None = None
    kubelab_image: Image | None = None
    _token_fingerprint: str | None = None

    # ---- profiles ------------------------------------------------------------------

    @property
    def kubelab_profiles(self) -> ProfilesConfig:
        """The parsed profiles file, re-read when it changes on disk."""
        if not self.profiles_file:
            raise _http_error(500, "kubelab: no profiles_file configured")
        path = Path(self.profiles_file)
        mtime = path.stat().st_mtime if path.exists() else -1.0
        cache = type(self)._profiles_cache
        if cache and cache[0] == str(path) and cache[1] == mtime:
            return cache[2]
        try:
            config = load_profiles(path)
        except ProfilesError as error:  # edited into an invalid state while the hub runs
            self.log.error("kubelab: %s", error)
            raise _http_error(
                500, "The profiles file is invalid; an administrator must fix it."
            ) from None
        type(self)._profiles_cache = (str(path), mtime, config)
        return config

    async def kubelab_groups(self) -> set[str]:
        """The user's groups: hub groups (manage_groups) plus the auth_state claim."""
        groups = {g.name for g in getattr(self.user, "groups", [])}
        if self.groups_auth_state_key:
            auth_state = await self.user.get_auth_state() or {}
            value = reduce(
                lambda d, k: d.get(k) if isinstance(d, dict) else None,
                self.groups_auth_state_key.split("."),
                auth_state,
            )
            if isinstance(value, list):
                groups |= {str(g) for g in value}
        return groups

    async def kubelab_resolve(self, user_options: dict[str, Any]) -> tuple[Profile, Image]:
        """The server-side check of a choice, as an HTTP error the user sees."""
        slug = user_options.get("profile") or None
        image = user_options.get("image") or None
        if slug is not None and not isinstance(slug, str):
            raise _http_error(400, "The profile must be a string.")
        if image is not None and not isinstance(image, str):
            raise _http_error(400, "The image must be a string.")
        try:
            return self.kubelab_profiles.resolve(await self.kubelab_groups(), slug, image)
        except ChoiceError as error:
            self.log.warning("kubelab: refused spawn for %s: %s", self.user.name, error.message)
            raise _http_error(error.status, error.message) from None

    async def kubelab_options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """Form fields `profile` and `profile-option-<slug>--image` → checked user_options."""
        slug = (formdata.get("profile") or [""])[0]
        options: dict[str, Any] = {}
        if slug:
            options["profile"] = slug
            image = (formdata.get(f"profile-option-{slug}--image") or [""])[0]
            if image:
                options["image"] = image
        await self.kubelab_resolve(options)
        return options

    async def kubelab_apply_user_options(self, spawner: Any, user_options: dict[str, Any]) -> None:
        """`apply_user_options` (JupyterHub ≥ 5.3): every path — form or REST — is checked."""
        self.kubelab_profile, self.kubelab_image = await self.kubelab_resolve(user_options or {})
        self.log.info(
            "kubelab: %s starts profile %s with image %s",
            self.user.name,
            self.kubelab_profile.slug,
            self.kubelab_image.name,
        )

    async def kubelab_identity(self) -> dict[str, Any]:
        assert self.kubelab_profile is not None and self.kubelab_image is not None
        groups = sorted(await self.kubelab_groups())
        auth_state = await self.user.get_auth_state() or {}
        claims = auth_state.get("oauth_user") or {}
        name = claims.get("name") if isinstance(claims.get("name"), str) else None
        return make_identity(self.user.name, groups, self.kubelab_profile, self.kubelab_image, name)

    def kubelab_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """Remember the choice so token refresh keeps working after a hub restart."""
        if self.kubelab_profile is not None and self.kubelab_image is not None:
            state["kubelab_profile"] = self.kubelab_profile.slug
            state["kubelab_image"] = self.kubelab_image.name
        return state

    def kubelab_load_state(self, state: dict[str, Any]) -> None:
        slug, image = state.get("kubelab_profile"), state.get("kubelab_image")
        if not slug or not image:
            return
        try:  # checked at spawn; the admin may have edited the file since
            config = self.kubelab_profiles
            self.kubelab_profile, self.kubelab_image = config.profile(slug), config.image(image)
        except (KeyError, ValueError, OSError):
            self.log.warning("kubelab: profile %s of %s no longer exists", slug, self.user.name)

    # ---- tokens --------------------------------------------------------------------

    async def deliver_tokens(self, tokens: dict[str, str]) -> None:
        """Put tokens where the notebook server reads them (files / Secret)."""
        raise NotImplementedError

    async def kubelab_sync_tokens(self, *, initial: bool = False) -> None:
        """Renew tokens close to expiry, then deliver them if they changed."""
        auth_state = await self.user.get_auth_state()
        if not auth_state:
            if initial:
                await self.deliver_tokens({})
            return
        expires_at = token_expires_at(auth_state)
        authenticator = getattr(self, "authenticator", None)
        self.log.debug(
            "kubelab: tokens of %s expire in %s s",
            self.user.name,
            None if expires_at is None else round(expires_at - time.time()),
        )
        if (
            not initial
            and self.token_refresh_margin > 0
            and expires_at is not None
            and authenticator is not None
            and expires_at - time.time() < self.token_refresh_margin
        ):
            try:
                model = await refresh_tokens_now(authenticator, self.user, auth_state)
            except Exception as error:
                self.log.warning("kubelab: token refresh for %s failed: %s", self.user.name, error)
                model = None
            if model and model.get("auth_state"):
                auth_state = model["auth_state"]
                await self.user.save_auth_state(auth_state)
                self.log.info("kubelab: renewed OIDC tokens for %s", self.user.name)
        tokens = tokens_from_auth_state(auth_state)
        fingerprint = token_fingerprint(tokens)
        if initial or fingerprint != self._token_fingerprint:
            await self.deliver_tokens(tokens)
            self._token_fingerprint = fingerprint
