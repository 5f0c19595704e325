"""The API server a test talks to, and the identities it talks to it as.

`Cluster` wraps an admin kubeconfig: the envtest control plane's (no kubelet, no
controllers: tests simulate them, see simulate.py) or a real cluster's
(`KUBELAB_TEST_KUBECONFIG`). Code under test should never run as admin: give it a
ServiceAccount with `service_account()` and the permissions it really has.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import kubernetes.client
import kubernetes.config
import kubernetes.watch
import yaml
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource, ResourceInstance

from .control_plane import write_kubeconfig
from .simulate import ControllerSimulations, ref

FIELD_MANAGER = "kubelab-tests"
T = TypeVar("T")


@dataclass(frozen=True)
class Identity:
    """Who a client acts as, with a kubeconfig file that says so."""

    username: str  # as the API server sees it, e.g. system:serviceaccount:ns:name
    kubeconfig: Path  # point KUBECONFIG (or a client's config_file) here
    token: str | None = None  # a ServiceAccount's bearer token (TokenRequest API)

    def api_client(self) -> kubernetes.client.ApiClient:
        """A `kubernetes` client acting as this identity (close it, or use `with`)."""
        return kubernetes.config.new_client_from_config(str(self.kubeconfig))


def as_dict(obj: Any) -> Any:
    """A manifest as JSON-ready data, from a dict or a generated model (either client)."""
    if isinstance(obj, ResourceInstance):
        return obj.to_dict()
    if isinstance(obj, list | tuple):
        return [as_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: as_dict(v) for k, v in obj.items()}
    if hasattr(obj, "attribute_map"):  # kubernetes / kubernetes_asyncio models: snake_case
        values = ((obj.attribute_map[a], getattr(obj, a)) for a in obj.attribute_map)
        return {key: as_dict(value) for key, value in values if value is not None}
    if isinstance(obj, datetime.datetime):
        return obj.strftime("%Y-%m-%dT%H:%M:%SZ")
    return obj


def wait_for(
    check: Callable[[], T | None], message: str, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Poll `check` until it returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} (waited {timeout:.0f} s)")
        time.sleep(interval)


def load_yaml(path: Path) -> list[dict[str, Any]]:
    """The documents of a YAML file (libyaml: the CRDs take 8 s to parse in pure Python)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(path.read_text(), Loader=loader) if doc]


def _test_name(prefix: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-")[:48].strip("-")
    return f"{slug or 'test'}-{uuid.uuid4().hex[:6]}"


class Cluster(ControllerSimulations):
    """An API server and an admin client for setting up and reading back."""

    def __init__(self, admin_kubeconfig: Path, workdir: Path, *, simulated: bool) -> None:
        self.workdir = workdir
        self.simulated = simulated  # True: nothing runs pods or controllers, tests do
        self.admin = Identity("admin", admin_kubeconfig)
        self.api = self.admin.api_client()
        self.dynamic = DynamicClient(self.api, cache_file=str(workdir / "discovery.json"))
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.rbac = kubernetes.client.RbacAuthorizationV1Api(self.api)
        self._sa_controller: _ServiceAccountController | None = None

    def close(self) -> None:
        if self._sa_controller is not None:
            self._sa_controller.stop()
        self.api.close()

    # ---- objects -------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(self, *objects: Any, namespace: str | None = None) -> list[dict[str, Any]]:
        """Server-side apply as admin (like `kubectl apply --server-side --force-conflicts`)."""
        applied = []
        for obj in objects:
            body = as_dict(obj)
            resource = self.resource(body["apiVersion"], body["kind"])
            ns = (namespace or body["metadata"].get("namespace")) if resource.namespaced else None
            response = resource.server_side_apply(
                body=body,
                namespace=ns,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                serialize=False,
            )
            applied.append(json.loads(response.data))
        return applied

    def create(self, obj: Any, namespace: str | None = None) -> dict[str, Any]:
        """Create as admin (POST: what most clients do; answers 409 if it exists)."""
        body = as_dict(obj)
        resource = self.resource(body["apiVersion"], body["kind"])
        ns = (namespace or body["metadata"].get("namespace")) if resource.namespaced else None
        return json.loads(resource.create(body=body, namespace=ns, serialize=False).data)

    def apply_file(self, path: Path, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.apply(*load_yaml(path), namespace=namespace)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        """The object as the API server has it (a dict), or None when it does not exist."""
        try:
            return self._get((api_version, kind, namespace, name))
        except kubernetes.dynamic.exceptions.NotFoundError:
            return None

    def read(self, obj: dict[str, Any]) -> Any:
        namespace, name = ref(obj)
        return self.get(obj["apiVersion"], obj["kind"], name, namespace)

    def install_crds(self, directory: Path, timeout: float = 60.0) -> list[str]:
        """Apply every CustomResourceDefinition in `directory`, then the objects of those kinds.

        Server-side: KServe's CRD is too large for client-side apply's annotation. On a
        real cluster, CRDs that already exist (a real Kubeflow) are left alone.
        """
        crds, others = [], []
        for path in sorted(directory.glob("*.yaml")):
            for doc in load_yaml(path):
                (crds if doc["kind"] == "CustomResourceDefinition" else others).append(doc)
        crd_api = "apiextensions.k8s.io/v1"
        if not self.simulated:
            crds = [c for c in crds if not self.get(crd_api, "CustomResourceDefinition", ref(c)[1])]
        self.resource(crd_api, "CustomResourceDefinition")  # discover once, before the threads
        with ThreadPoolExecutor(max(len(crds), 1)) as pool:  # the server works on all at once
            list(pool.map(self.apply, crds))
        for crd in crds:
            # served in discovery once Established; far cheaper to poll than a 2 MB CRD
            wait_for(
                lambda crd=crd: self._served(crd),
                f"CRD {ref(crd)[1]} not Established",
                timeout,
                interval=0.1,
            )
            current = self.get(crd_api, "CustomResourceDefinition", ref(crd)[1])
            assert _condition_true(current, "Established"), current["status"]
        self.dynamic.resources.invalidate_cache()  # discover the new kinds
        for obj in others:
            if self.simulated or not self.read(obj):
                self.apply(obj)
        return [ref(c)[1] for c in crds]

    def _served(self, crd: dict[str, Any]) -> bool:
        spec = crd["spec"]
        for version in (v["name"] for v in spec["versions"] if v.get("served", True)):
            try:
                response = self.dynamic.request(
                    "get", f"/apis/{spec['group']}/{version}", serialize=False
                )
            except kubernetes.dynamic.exceptions.NotFoundError:
                return False
            plurals = {r["name"] for r in json.loads(response.data)["resources"]}
            if spec["names"]["plural"] not in plurals:
                return False
        return True

    # ---- namespaces and identities -------------------------------------------------

    def create_namespace(self, prefix: str, labels: dict[str, str] | None = None) -> str:
        """A fresh namespace (a unique name: envtest never finishes deleting namespaces)."""
        name = _test_name(prefix)
        body = {"metadata": {"name": name, "labels": labels or {}}}
        self.core.create_namespace(body)
        self.wait_for_default_service_account(name)
        return name

    def delete_namespace(self, name: str) -> None:
        try:
            self.core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise

    def wait_for_default_service_account(self, namespace: str, timeout: float = 30.0) -> None:
        """Pods are refused until the ServiceAccount controller made `default`."""
        wait_for(
            lambda: self._exists(self.core.read_namespaced_service_account, "default", namespace),
            f"no ServiceAccount default in {namespace}",
            timeout,
        )

    def service_account(
        self,
        namespace: str,
        name: str,
        *,
        rules: list[dict[str, Any]] | None = None,
        cluster_role: str | None = None,
        cluster_wide: bool = False,
        expiration_seconds: int = 3600,
    ) -> Identity:
        """A ServiceAccount (created if missing) with a fresh token, granted:

        rules=[...]          a Role with these rules in `namespace`, bound to it
        cluster_role="edit"  that ClusterRole in `namespace` (a RoleBinding), or
                             everywhere with cluster_wide=True (a ClusterRoleBinding)
        """
        if not self._exists(self.core.read_namespaced_service_account, name, namespace):
            self.core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
        subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
        binding_name = f"{name}-{uuid.uuid4().hex[:6]}"
        if rules is not None:
            self.apply(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": binding_name, "namespace": namespace},
                    "rules": rules,
                }
            )
            self._bind(binding_name, "Role", binding_name, subject, namespace)
        if cluster_role is not None:
            self._bind(
                binding_name,
                "ClusterRole",
                cluster_role,
                subject,
                None if cluster_wide else namespace,
            )
            rules = [as_dict(r) for r in self.rbac.read_cluster_role(cluster_role).rules or []]
        username = f"system:serviceaccount:{namespace}:{name}"
        self._wait_until_granted(username, rules or [], None if cluster_wide else namespace)
        return self.token_identity(username, self.token(namespace, name, expiration_seconds))

    def token(self, namespace: str, name: str, expiration_seconds: int = 3600) -> str:
        """A bound token for a ServiceAccount, from the TokenRequest API (as kubelet gets them)."""
        request = {"spec": {"audiences": [], "expirationSeconds": expiration_seconds}}
        response = self.core.create_namespaced_service_account_token(name, namespace, request)
        return response.status.token

    def token_identity(self, username: str, token: str) -> Identity:
        """A kubeconfig for this cluster that authenticates with `token`."""
        config = self.api.configuration
        cluster: dict[str, Any] = {"server": config.host}
        if config.ssl_ca_cert:
            ca = Path(config.ssl_ca_cert).read_bytes()
            cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
        if not config.verify_ssl:
            cluster["insecure-skip-tls-verify"] = True
        path = self.workdir / "identities" / f"{uuid.uuid4().hex}.kubeconfig"
        write_kubeconfig(path, cluster, {"token": token})
        return Identity(username, path, token)

    def can(
        self,
        username: str,
        verb: str,
        resource: str,
        namespace: str | None = None,
        *,
        group: str = "",
        name: str | None = None,
    ) -> bool:
        """What RBAC allows `username` (a SubjectAccessReview, as `kubectl auth can-i --as`)."""
        groups = ["system:authenticated"]
        if username.startswith("system:serviceaccount:"):
            groups += ["system:serviceaccounts", f"system:serviceaccounts:{username.split(':')[2]}"]
        attributes = {"verb": verb, "resource": resource, "group": group}
        if namespace:
            attributes["namespace"] = namespace
        if name:
            attributes["name"] = name
        review = kubernetes.client.AuthorizationV1Api(self.api).create_subject_access_review(
            {"spec": {"user": username, "groups": groups, "resourceAttributes": attributes}}
        )
        return bool(review.status.allowed)

    # ---- the one controller every namespace needs ----------------------------------

    def run_serviceaccount_controller(self) -> None:
        """Envtest only: make `default` in every new namespace, as kube-controller-manager."""
        if self.simulated and self._sa_controller is None:
            self._sa_controller = _ServiceAccountController(self.admin)
            self._sa_controller.start()

    @contextmanager
    def serviceaccount_controller_paused(self) -> Iterator[None]:
        """Hold back `default` ServiceAccounts: a slow controller manager."""
        assert self._sa_controller is not None, "only envtest's controller can be paused"
        self._sa_controller.paused.set()
        try:
            yield
        finally:
            self._sa_controller.paused.clear()

    # ---- helpers -------------------------------------------------------------------

    def _bind(
        self, name: str, role_kind: str, role: str, subject: dict[str, str], namespace: str | None
    ) -> None:
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [subject],
        }
        self.apply(binding)

    def _wait_until_granted(
        self, username: str, rules: list[dict[str, Any]], namespace: str | None
    ) -> None:
        """The API server's RBAC cache learns of new bindings a moment later."""
        checkable = [
            r
            for r in rules
            if (r.get("resources") or ["*"])[0] != "*" and not r.get("resourceNames")
        ]
        if not checkable:
            return
        rule = checkable[0]
        group, verb = (rule.get("apiGroups") or [""])[0], rule["verbs"][0]
        resource = rule["resources"][0].split("/")[0]
        wait_for(
            lambda: self.can(username, verb, resource, namespace, group=group),
            f"{username} never got {verb} {resource}",
        )

    @staticmethod
    def _exists(read: Callable[..., Any], *args: Any) -> bool:
        try:
            read(*args)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True


def _condition_true(obj: Any, condition: str) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == condition and c["status"] == "True" for c in conditions)


class _ServiceAccountController(threading.Thread):
    """Watches namespaces and creates their `default` ServiceAccount."""

    def __init__(self, admin: Identity) -> None:
        super().__init__(name="simulated-serviceaccount-controller", daemon=True)
        self.api = admin.api_client()
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.stopping = threading.Event()
        self.paused = threading.Event()
        self.pending: set[str] = set()
        self.done: set[str] = set()

    def run(self) -> None:
        watcher = kubernetes.watch.Watch()
        while not self.stopping.is_set():
            try:
                # short watches: stop() is noticed within a second
                for event in watcher.stream(self.core.list_namespace, timeout_seconds=1):
                    namespace = event["object"]
                    if event["type"] == "ADDED" and not namespace.metadata.deletion_timestamp:
                        self.pending.add(namespace.metadata.name)
                    self._reconcile()
                self._reconcile()
            except Exception:  # the server is going away at the end of the session
                self.stopping.wait(0.2)

    def _reconcile(self) -> None:
        if self.paused.is_set():
            return
        for namespace in sorted(self.pending - self.done):
            try:
                self.core.create_namespaced_service_account(
                    namespace, {"metadata": {"name": "default"}}
                )
            except ApiException as error:
                if error.status not in (409, 403, 404):  # 403: the namespace is terminating
                    raise
            self.done.add(namespace)

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
        self.api.close()
