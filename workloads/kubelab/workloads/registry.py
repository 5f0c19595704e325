"""Which `Workload` runs each kind of job: kind -> "module:Class", imported on first use.

The client layer dispatches `create_job(kind, spec)` through here, so adding a kind
is one line below and a `Workload` subclass; nothing else in the client, CLI or server
changes. Imports are lazy so that listing jobs never imports torch or an HTTP server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from kubelab.pipelines.errors import KubelabError

if TYPE_CHECKING:
    from kubelab.workloads.base import Workload

# kind -> "package.module:ClassName" (or the class itself, e.g. one defined by a test).
WORKLOADS: dict[str, str | type[Workload]] = {
    "training": "kubelab.workloads.trainer.workload:TrainingWorkload",
    "serving": "kubelab.workloads.serving.workload:ServingWorkload",
    "tuning": "kubelab.workloads.optimizer.workload:TuningWorkload",
}

# One instance per kind and process: a local runner may keep its processes in it.
_instances: dict[str, Workload] = {}


def kinds() -> list[str]:
    """The job kinds this installation can run."""
    return sorted(WORKLOADS)


def workload(kind: str) -> Workload:
    """The `Workload` of `kind`; a `KubelabError` naming the known kinds otherwise."""
    target = WORKLOADS.get(kind) if isinstance(kind, str) else None
    if target is None:
        raise KubelabError(
            f"unknown job kind {kind!r}; kinds: {', '.join(kinds()) or '(none installed)'}",
            kind=kind,
            kinds=kinds(),
        )
    if isinstance(target, str):
        module_name, _, class_name = target.partition(":")
        target = getattr(importlib.import_module(module_name), class_name)
    instance = _instances.get(kind)
    if type(instance) is not target:  # first use, or a test swapped the class
        instance = _instances[kind] = target()
    return instance
