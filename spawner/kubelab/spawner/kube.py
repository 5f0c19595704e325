"""KubelabSpawner: KubeSpawner driven by the kubelab profiles file.

KubeSpawner does the Kubernetes work (namespace, PVC, pod, form rendering, profile
overrides); kubelab adds the group-filtered profile_list, the server-side re-check of
the choice, string quantities, and the identity ConfigMap + token Secret mounted as
files and patched when tokens are refreshed.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from jupyterhub.utils import exponential_backoff
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.clients import shared_client
from traitlets import Unicode, default

from .mixin import KubelabProfilesMixin
from .objects import (
    IDENTITY_FILENAME,
    POD_IDENTITY_DIR,
    POD_TOKEN_DIR,
    USER_NAMESPACE_LABEL,
    finalize_pod,
    kube_name,
    make_hub_role_binding,
    make_identity_configmap,
    make_notebook_role_binding,
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

    hub_user_namespace_role = Unicode(
        "kubelab-hub-user-namespace",
        config=True,
        help=(
            "ClusterRole the hub binds to its own ServiceAccount (a RoleBinding named "
            "kubelab-hub) in each user namespace it creates, so that its cluster-wide role "
            "never writes pods, PVCs, ConfigMaps or Secrets elsewhere; see "
            "deploy/kubernetes/rbac.yaml. Empty: bind nothing (the hub already holds those "
            "rights where users' pods run)."
        ),
    )

    notebook_role = Unicode(
        "kubelab-notebook",
        config=True,
        help=(
            "ClusterRole bound (RoleBinding kubelab-notebook) to the user's pod ServiceAccount "
            "in the user's own namespace, so that kubelab in the notebook submits and follows "
            "jobs there (TrainJob, PyTorchJob, ...) as the user; its token is then mounted in "
            "the pod. See deploy/kubernetes/rbac.yaml. Empty: bind nothing and, unless "
            "automount_service_account_token says otherwise, mount no token."
        ),
    )

    @default("automount_service_account_token")
    def _default_automount(self) -> bool | None:
        return True if self.notebook_role and self.enable_user_namespaces else None

    @default("enable_user_namespaces")
    def _default_user_namespaces(self) -> bool:
        return True

    @default("user_namespace_template")
    def _default_namespace_template(self) -> str:
        return "kubelab-{username}"

    @default("user_namespace_labels")
    def _default_namespace_labels(self) -> dict[str, str]:
        return {USER_NAMESPACE_LABEL: "true"}

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
            self.token_secret_name,
            self.namespace,
            self.user.name,
            tokens,
            labels,
            api_token=self.api_token,  # known while starting; after a hub restart, kept
        )
        configmap = make_identity_configmap(
            self.identity_configmap_name,
            self.namespace,
            self.user.name,
            await self.kubelab_identity(),
            labels,
        )
        return secret, configmap

    async def _ensure_namespace(self) -> None:
        """Create the user namespace, grant the hub its role there, wait until pods can go in."""
        await super()._ensure_namespace()
        if self.hub_user_namespace_role:
            await self._bind_hub_role()
        if self.notebook_role:
            await self._bind_notebook_role()
        await exponential_backoff(
            self._service_account_exists,
            f"ServiceAccount {self.service_account or 'default'} never appeared in {self.namespace}",
            timeout=self.k8s_api_request_retry_timeout,
        )

    async def _bind_hub_role(self) -> None:
        # who the hub is, as the API server sees it: no ServiceAccount name to configure
        review = await shared_client("AuthenticationV1Api").create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        await self._create_role_binding(
            make_hub_role_binding(
                self.namespace, self.hub_user_namespace_role, review.status.user_info.username
            )
        )
        # the API server's RBAC cache learns of new bindings asynchronously
        await exponential_backoff(
            partial(self._allowed, "create", "pods"),
            f"the hub's RoleBinding in {self.namespace} never took effect",
            timeout=self.k8s_api_request_retry_timeout,
        )

    async def _bind_notebook_role(self) -> None:
        binding = make_notebook_role_binding(
            self.namespace, self.notebook_role, self.service_account or "default"
        )
        try:
            await self._create_role_binding(binding)
        except ApiException as error:
            if error.status != 403:
                raise
            # an older rbac.yaml: the server starts, its notebook just cannot submit jobs
            self.log.warning(
                "kubelab: cannot bind %s in %s (%s); apply deploy/kubernetes/rbac.yaml so "
                "notebooks can submit jobs",
                self.notebook_role,
                self.namespace,
                error.reason,
            )

    async def _create_role_binding(self, binding: Any) -> None:
        """Create it in the user namespace; one that exists already is fine."""
        rbac = shared_client("RbacAuthorizationV1Api")
        try:
            await asyncio.wait_for(
                rbac.create_namespaced_role_binding(self.namespace, binding),
                self.k8s_api_request_timeout,
            )
        except ApiException as error:
            if error.status != 409:
                raise

    async def _allowed(self, verb: str, resource: str) -> bool:
        review = await shared_client("AuthorizationV1Api").create_self_subject_access_review(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "namespace": self.namespace,
                        "verb": verb,
                        "resource": resource,
                    }
                },
            }
        )
        return bool(review.status.allowed)

    async def _service_account_exists(self) -> bool:
        """Pods are refused until the controller manager has made the namespace's account."""
        try:
            await asyncio.wait_for(
                self.api.read_namespaced_service_account(
                    self.service_account or "default", self.namespace
                ),
                self.k8s_api_request_timeout,
            )
        except ApiException as error:
            if error.status == 404:
                return False
            if error.status == 403:  # not ours to check: let pod creation tell
                return True
            raise
        return True

    async def _apply(self, kind: str, manifest: Any, update: str = "replace") -> None:
        """Create, or when it exists, replace (or patch: merge into) the object."""
        create = getattr(self.api, f"create_namespaced_{kind}")
        change = getattr(self.api, f"{update}_namespaced_{kind}")
        try:
            await asyncio.wait_for(create(self.namespace, manifest), self.k8s_api_request_timeout)
        except ApiException as error:
            if error.status != 409:
                raise
            await asyncio.wait_for(
                change(manifest.metadata.name, self.namespace, manifest),
                self.k8s_api_request_timeout,
            )

    async def deliver_tokens(self, tokens: dict[str, str]) -> None:
        # a merge: a token the refresh did not return (id_token, the hub's) keeps its value
        secret, _ = await self.get_identity_objects(tokens)
        await self._apply("secret", secret, update="patch")

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
