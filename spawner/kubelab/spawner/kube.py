"""KubelabSpawner: KubeSpawner driven by the kubelab profiles file.

KubeSpawner does the Kubernetes work (namespace, PVC, pod, form rendering, profile
overrides); kubelab adds the group-filtered profile_list, the server-side re-check of
the choice, string quantities, and the identity ConfigMap + token Secret mounted as
files and patched when tokens are refreshed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from traitlets import Unicode, default

from .mixin import KubelabProfilesMixin
from .objects import (
    IDENTITY_FILENAME,
    POD_IDENTITY_DIR,
    POD_TOKEN_DIR,
    finalize_pod,
    kube_name,
    make_identity_configmap,
    make_profile_list,
    make_token_secret,
)


class KubelabSpawner(KubelabProfilesMixin, KubeSpawner):
    """Per-user namespace, PVC and pod from a kubelab profile."""

    token_secret_name_template = Unicode(
        "kubelab-oidc-{user_server}",
        config=True,
        help=(
            "Name of the Secret holding the user's OIDC access/id tokens (KubeSpawner "
            "template fields such as {user_server} are expanded). Mounted read-only at "
            f"{POD_TOKEN_DIR}; patched whenever the hub refreshes the tokens."
        ),
    )

    identity_configmap_name_template = Unicode(
        "kubelab-identity-{user_server}",
        config=True,
        help=(
            "Name of the ConfigMap with the non-secret identity.json (user, groups, "
            f"profile), mounted at {POD_IDENTITY_DIR}."
        ),
    )

    @default("enable_user_namespaces")
    def _default_user_namespaces(self) -> bool:
        return True

    @default("user_namespace_template")
    def _default_namespace_template(self) -> str:
        return "kubelab-{username}"

    @default("storage_pvc_ensure")
    def _default_pvc_ensure(self) -> bool:
        return True

    @default("pvc_name_template")
    def _default_pvc_name(self) -> str:
        return "kubelab-home-{username}"

    @default("storage_capacity")
    def _default_storage_capacity(self) -> str:
        return "10Gi"

    @default("volumes")
    def _default_volumes(self) -> list[dict[str, Any]]:
        return [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]

    @default("volume_mounts")
    def _default_volume_mounts(self) -> list[dict[str, Any]]:
        return [{"name": "home", "mountPath": "/home/jovyan"}]

    @default("default_url")
    def _default_url(self) -> str:
        return "/lab"

    @default("profile_list")
    def _default_profile_list(self) -> Any:
        return self._kubelab_profile_list

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return self._kubelab_options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return self.kubelab_apply_user_options

    async def _kubelab_profile_list(self, spawner: Any) -> list[dict[str, Any]]:
        """Only the profiles the user's groups allow are ever offered or loadable."""
        return make_profile_list(self.kubelab_profiles, await self.kubelab_groups())

    async def _kubelab_options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        await self.kubelab_options_from_form(formdata)  # refuses forbidden choices (403/400)
        return self._options_from_form(formdata)

    @property
    def token_secret_name(self) -> str:
        return kube_name(self._expand_user_properties(self.token_secret_name_template), 253)

    @property
    def identity_configmap_name(self) -> str:
        return kube_name(self._expand_user_properties(self.identity_configmap_name_template), 253)

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env["KUBELAB_IDENTITY_FILE"] = f"{POD_IDENTITY_DIR}/{IDENTITY_FILENAME}"
        env["KUBELAB_TOKEN_DIR"] = POD_TOKEN_DIR  # a path: tokens are files, not env values
        if self.kubelab_profile is not None:
            env["KUBELAB_PROFILE"] = self.kubelab_profile.slug
        return env

    async def get_pod_manifest(self) -> Any:
        pod = await super().get_pod_manifest()
        return finalize_pod(
            pod,
            self.token_secret_name,
            self.identity_configmap_name,
            self.user.name,
            self.kubelab_profile,
        )

    async def get_identity_objects(self, tokens: dict[str, str]) -> tuple[Any, Any]:
        """The Secret and ConfigMap for this server (pure builders, no API calls)."""
        labels = {"app.kubernetes.io/managed-by": "kubelab"}
        secret = make_token_secret(
            self.token_secret_name, self.namespace, self.user.name, tokens, labels
        )
        configmap = make_identity_configmap(
            self.identity_configmap_name,
            self.namespace,
            self.user.name,
            await self.kubelab_identity(),
            labels,
        )
        return secret, configmap

    async def _apply(self, kind: str, manifest: Any) -> None:
        create = getattr(self.api, f"create_namespaced_{kind}")
        replace = getattr(self.api, f"replace_namespaced_{kind}")
        try:
            await asyncio.wait_for(create(self.namespace, manifest), self.k8s_api_request_timeout)
        except ApiException as error:
            if error.status != 409:
                raise
            await asyncio.wait_for(
                replace(manifest.metadata.name, self.namespace, manifest),
                self.k8s_api_request_timeout,
            )

    async def deliver_tokens(self, tokens: dict[str, str]) -> None:
        secret, _ = await self.get_identity_objects(tokens)
        await self._apply("secret", secret)

    async def _make_create_pod_request(self, pod: Any, request_timeout: int) -> Any:
        # the namespace exists by now (KubeSpawner._start); mount targets must exist first
        if self.kubelab_profile is not None:
            _, configmap = await self.get_identity_objects({})
            await self._apply("config_map", configmap)
            await self.kubelab_sync_tokens(initial=True)
        return await super()._make_create_pod_request(pod, request_timeout)

    async def stop(self, now: bool = False) -> Any:
        """Tokens must not outlive the server: delete the Secret with the pod."""
        result = await super().stop(now=now)
        await self._delete_token_secret()
        return result

    async def _delete_token_secret(self) -> None:
        try:
            await asyncio.wait_for(
                self.api.delete_namespaced_secret(self.token_secret_name, self.namespace),
                self.k8s_api_request_timeout,
            )
        except Exception as error:  # the pod is gone either way; report, do not fail
            if not (isinstance(error, ApiException) and error.status == 404):
                self.log.warning("kubelab: could not delete %s: %s", self.token_secret_name, error)

    def get_state(self) -> dict[str, Any]:
        return self.kubelab_state(super().get_state())

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.kubelab_load_state(state)

    def clear_state(self) -> None:
        super().clear_state()
        self.kubelab_profile = self.kubelab_image = None

    async def poll(self) -> Any:
        """Running: deliver refreshed tokens. Gone (evicted, node lost, deleted by
        someone): delete the token Secret, since JupyterHub calls stop() only for a
        server that poll() says is running."""
        status = await super().poll()
        if status is not None:
            await self._delete_token_secret()
        elif self.kubelab_profile is not None:
            try:
                await self.kubelab_sync_tokens()
            except Exception:
                self.log.exception("kubelab: could not refresh tokens for %s", self.user.name)
        return status
