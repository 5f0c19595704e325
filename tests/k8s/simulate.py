"""What the scheduler, the kubelet and the operators would do, done by the test.

The envtest API server runs no kubelet, scheduler or controllers, so nothing ever
becomes Running, Ready or Succeeded by itself. A test says what happens with these
helpers, named for what they simulate; each writes what the real component writes (the
`status` subresource, a binding, the final deletion). On a real cluster
(`KUBELAB_TEST_KUBECONFIG`) the real components act, and each helper waits until they
have done the same thing instead.

Nothing in `kubelab` may call these: they are the cluster's side, not ours.
"""

from __future__ import annotations

import datetime
import itertools
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubernetes.client import V1AggregationRule
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api, RbacAuthorizationV1Api
    from kubernetes.dynamic import DynamicClient

NODE_NAME = "kubelab-test-node"
_NO_RULE = V1AggregationRule()
_pod_ips = itertools.count(2)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ControllerSimulations:
    """Mixed into `Cluster` (cluster.py), which provides the clients below."""

    simulated: bool
    dynamic: DynamicClient
    core: CoreV1Api
    rbac: RbacAuthorizationV1Api

    # ---- scheduler and kubelet -------------------------------------------------------

    def simulate_scheduled(self, pod: Any, node: str = NODE_NAME) -> dict[str, Any]:
        """The scheduler binds the pod to a node (pods/binding)."""
        key = _pod_key(pod)
        namespace, name = key[2:]
        if self.simulated and not self._get(key)["spec"].get("nodeName"):
            binding = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
            path = f"/api/v1/namespaces/{namespace}/pods/{name}/binding"
            self.dynamic.request("post", path, body=binding)
        return self._wait(key, lambda p: p["spec"].get("nodeName"), "scheduled", 30)

    def simulate_kubelet_ready(self, pod: Any, pod_ip: str | None = None) -> dict[str, Any]:
        """The pod is scheduled, its containers started and ready: phase Running, a podIP."""
        key = _pod_key(pod)
        if not self.simulated:
            return self._wait(key, _pod_ready, "Running and Ready")
        spec = self.simulate_scheduled(key[2:])["spec"]
        started = now()
        ip = pod_ip or f"10.244.0.{next(_pod_ips) % 250 + 2}"
        status = {
            "phase": "Running",
            "hostIP": "10.0.1.1",
            "hostIPs": [{"ip": "10.0.1.1"}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "conditions": [
                _condition(kind, "True", started)
                for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "initContainerStatuses": [
                _container_status(c, {"terminated": _terminated(0, started)}, ready=False)
                for c in spec.get("initContainers") or []
            ],
            "containerStatuses": [
                _container_status(c, {"running": {"startedAt": started}}, ready=True)
                for c in spec["containers"]
            ],
        }
        return self._patch_status(key, status)

    def simulate_container_terminated(
        self, pod: Any, exit_code: int = 0, container: str | None = None
    ) -> dict[str, Any]:
        """A container exits (the notebook server quit or crashed); the pod's phase follows."""
        key = _pod_key(pod)
        if not self.simulated:
            return self._wait(key, _pod_finished, "terminated")
        current = self._get(key)
        statuses = current["status"].get("containerStatuses") or []
        assert statuses, f"pod {key[2]}/{key[3]} never ran: simulate_kubelet_ready first"
        finished = now()
        for status in statuses:
            if container is None or status["name"] == container:
                status["state"] = {"terminated": _terminated(exit_code, finished)}
                status["ready"] = status["started"] = False
        conditions = [
            _condition(c["type"], "False", finished)
            if c["type"] in ("Ready", "ContainersReady")
            else c
            for c in current["status"]["conditions"]
        ]
        patch: dict[str, Any] = {"containerStatuses": statuses, "conditions": conditions}
        if all("terminated" in s["state"] for s in statuses):
            codes = [s["state"]["terminated"]["exitCode"] for s in statuses]
            patch["phase"] = "Succeeded" if not any(codes) else "Failed"
        return self._patch_status(key, patch)

    def simulate_pod_deleted(self, pod: Any, timeout: float = 30.0) -> None:
        """The kubelet finishes a graceful deletion: the pod object goes away.

        A scheduled pod whose deletion was requested stays (Terminating) until its
        kubelet confirms; this waits for the request, then confirms (gracePeriod 0).
        """
        key = _pod_key(pod)
        namespace, name = key[2:]
        deadline = time.monotonic() + timeout
        while True:
            try:
                current = self._get(key)
            except DynamicApiError as error:
                if error.status == 404:
                    return
                raise
            if self.simulated and current["metadata"].get("deletionTimestamp"):
                body = {
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": current["metadata"]["uid"]},
                }
                try:
                    self.core.delete_namespaced_pod(name, namespace, body=body)
                except ApiException as error:
                    if error.status not in (404, 409):
                        raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {namespace}/{name} was never deleted ({timeout:.0f} s)")
            time.sleep(0.05)

    # ---- operators (Kubeflow Trainer, Katib, KServe, ...) ----------------------------

    def simulate_condition(
        self,
        obj: dict[str, Any],
        type: str,  # the field's name in Kubernetes
        status: str = "True",
        reason: str = "",
        message: str = "",
    ) -> dict[str, Any]:
        """An operator sets a condition in status.conditions (replacing one of that type)."""
        key = _key(obj)
        if not self.simulated:
            return self._wait(
                key,
                lambda o: any(
                    c["type"] == type and c["status"] == status
                    for c in (o.get("status") or {}).get("conditions") or []
                ),
                f"condition {type}={status}",
            )
        condition = {
            **_condition(type, status, now()),
            **({"reason": reason} if reason else {}),
            **({"message": message} if message else {}),
        }
        for _ in range(10):  # optimistic concurrency, as a controller does
            current = self._get(key)
            conditions = [
                c
                for c in (current.get("status") or {}).get("conditions") or []
                if c["type"] != type
            ]
            try:
                return self._patch_status(
                    key,
                    {"conditions": [*conditions, condition]},
                    resource_version=current["metadata"]["resourceVersion"],
                )
            except ApiException as error:
                if error.status != 409:
                    raise
        raise RuntimeError(f"{_describe(key)} kept changing under simulate_condition")

    def simulate_status(self, obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """An operator writes status fields, e.g. simulate_status(isvc, url="http://...")."""
        key = _key(obj)
        if not self.simulated:
            return self._wait(
                key,
                lambda o: all(field in (o.get("status") or {}) for field in fields),
                f"status fields {sorted(fields)}",
            )
        return self._patch_status(key, fields)

    # ---- kube-controller-manager -----------------------------------------------------

    def simulate_clusterrole_aggregation(self) -> None:
        """Fill aggregated ClusterRoles (admin, edit, view, ...) from the roles they select.

        Without the controller manager `edit` and `view` have no rules at all; run this
        again after creating ClusterRoles with aggregate-to-* labels.
        """
        if not self.simulated:
            return
        roles = {r.metadata.name: r for r in self.rbac.list_cluster_role().items}
        rules = {name: list(role.rules or []) for name, role in roles.items()}
        for _ in range(len(roles)):  # aggregated roles may select aggregated roles
            changed = False
            for name, role in roles.items():
                for selector in (role.aggregation_rule or _NO_RULE).cluster_role_selectors or []:
                    wanted = selector.match_labels or {}
                    for other, other_role in roles.items():
                        labels = other_role.metadata.labels or {}
                        if (
                            other == name
                            or not wanted
                            or any(labels.get(k) != v for k, v in wanted.items())
                        ):
                            continue
                        for rule in rules[other]:
                            if rule not in rules[name]:
                                rules[name].append(rule)
                                changed = True
            if not changed:
                break
        for name, role in roles.items():
            if role.aggregation_rule is not None and rules[name] != (role.rules or []):
                role.rules = rules[name]
                self.rbac.replace_cluster_role(name, role)

    # ---- helpers ---------------------------------------------------------------------

    def _get(self, key: Key) -> Any:
        api_version, kind, namespace, name = key
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        # raw JSON: building ResourceInstances of a 2 MB CRD takes seconds
        return json.loads(resource.get(name=name, namespace=namespace, serialize=False).data)

    def _patch_status(
        self, key: Key, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        api_version, kind, namespace, name = key
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        # CRDs without a status subresource keep status in the object itself
        target = resource.subresources.get("status", resource)
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        response = self.dynamic.patch(
            target,
            body=body,
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
            serialize=False,
        )
        return json.loads(response.data)

    def _wait(
        self, key: Key, check: Callable[[Any], Any], what: str, timeout: float = 300.0
    ) -> dict[str, Any]:
        """On a real cluster: until the real component has done it."""
        deadline = time.monotonic() + timeout
        while True:
            current = self._get(key)
            if check(current):
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(f"{_describe(key)}: no {what} after {timeout:.0f} s")
            time.sleep(0.5)


Key = tuple[str, str, str | None, str]  # apiVersion, kind, namespace, name


def _key(obj: dict[str, Any]) -> Key:
    return (obj["apiVersion"], obj["kind"], *ref(obj))


def _pod_key(pod: Any) -> Key:
    return ("v1", "Pod", *ref(pod))


def _describe(key: Key) -> str:
    return f"{key[1]} {key[2]}/{key[3]}" if key[2] else f"{key[1]} {key[3]}"


def ref(obj: Any) -> tuple[str | None, str]:
    """(namespace, name) of a dict, a kubernetes model or a (namespace, name) tuple."""
    if isinstance(obj, tuple):
        return obj[0], obj[1]
    metadata = obj["metadata"] if isinstance(obj, dict) else obj.metadata
    if isinstance(metadata, dict):
        return metadata.get("namespace"), metadata["name"]
    return metadata.namespace, metadata.name


def _condition(kind: str, status: str, when: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "lastTransitionTime": when}


def _terminated(exit_code: int, when: str) -> dict[str, Any]:
    reason = "Completed" if exit_code == 0 else "Error"
    return {"exitCode": exit_code, "reason": reason, "startedAt": when, "finishedAt": when}


def _container_status(
    container: dict[str, Any], state: dict[str, Any], ready: bool
) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": f"{container['image']}@sha256:{'0' * 64}",
        "containerID": f"containerd://{container['name']}",
        "ready": ready,
        "started": ready,
        "restartCount": 0,
        "state": state,
    }


def _pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


def _pod_finished(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
