"""`dsl.PipelineConfig`: run-level settings of a pipeline, KFP's names and shapes.

They go to the PlatformSpec (`platforms.kubernetes.pipelineConfig`), which a Kubeflow
Pipelines cluster applies: a shared workspace volume for the run's tasks, how long
the finished run's resources are kept, and a deadline for the whole run.
"""

from __future__ import annotations

import re
from typing import Any

from kubelab.pipelines.errors import KubelabError

_SIZE = re.compile(r"^(?:0|[1-9]\d*)(?:\.\d+)?(?:Ki|Mi|Gi|Ti|Pi|Ei|K|M|G|T|P|E)?$")
_INT32_MAX = 2**31 - 1


class KubernetesWorkspaceConfig:
    """Fields patched onto the workspace's PersistentVolumeClaim spec."""

    def __init__(self, pvcSpecPatch: dict[str, Any] | None = None) -> None:
        self.pvcSpecPatch = dict(pvcSpecPatch or {})

    def set_pvcSpecPatch(self, patch: dict[str, Any]) -> None:
        self.pvcSpecPatch = dict(patch)


class WorkspaceConfig:
    """A volume shared by the run's tasks, mounted at `dsl.WORKSPACE_PATH_PLACEHOLDER`."""

    def __init__(self, size: str, kubernetes: KubernetesWorkspaceConfig | None = None) -> None:
        self.set_size(size)
        self.kubernetes = kubernetes or KubernetesWorkspaceConfig()

    def set_size(self, size: str) -> None:
        text = str(size or "").strip()
        if not _SIZE.match(text):
            raise KubelabError(
                f"dsl.WorkspaceConfig: size {size!r} is not a Kubernetes quantity "
                "such as '10Gi' or '500Mi'.",
                field="size",
            )
        self.size = text

    def set_kubernetes_config(self, kubernetes_config: KubernetesWorkspaceConfig) -> None:
        self.kubernetes = kubernetes_config

    def get_workspace(self) -> dict[str, Any]:
        return {"size": self.size, "kubernetes": {"pvcSpecPatch": self.kubernetes.pvcSpecPatch}}


class PipelineConfig:
    """Run-level settings: `@dsl.pipeline(pipeline_config=dsl.PipelineConfig(...))`."""

    _TTL_FIELDS = {
        "ttl_seconds_after_finished": "resourceTtlOnCompletion",
        "ttl_seconds_after_success": "resourceTtlOnSuccess",
        "ttl_seconds_after_failure": "resourceTtlOnFailure",
        "active_deadline_seconds": "activeDeadlineSeconds",
    }

    def __init__(
        self,
        workspace: WorkspaceConfig | None = None,
        ttl_seconds_after_finished: int | None = None,
        ttl_seconds_after_success: int | None = None,
        ttl_seconds_after_failure: int | None = None,
        active_deadline_seconds: int | None = None,
    ) -> None:
        self.workspace = workspace
        values = {
            "ttl_seconds_after_finished": ttl_seconds_after_finished,
            "ttl_seconds_after_success": ttl_seconds_after_success,
            "ttl_seconds_after_failure": ttl_seconds_after_failure,
            "active_deadline_seconds": active_deadline_seconds,
        }
        for name, value in values.items():
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= _INT32_MAX
            ):
                raise KubelabError(
                    f"dsl.PipelineConfig: {name} must be an int between 0 and {_INT32_MAX}, "
                    f"got {value!r}.",
                    field=name,
                )
            setattr(self, name, value)

    def to_platform(self) -> dict[str, Any]:
        """The `pipelineConfig` entry of the Kubernetes PlatformSpec (empty if unset)."""
        config: dict[str, Any] = {}
        if self.workspace is not None:
            config["workspace"] = self.workspace.get_workspace()
        for name, key in self._TTL_FIELDS.items():
            value = getattr(self, name)
            if value:
                config[key] = value
        return config
