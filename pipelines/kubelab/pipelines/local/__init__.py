"""Run pipelines and components on this machine, with the `kfp.local` surface.

    from kubelab.pipelines import dsl, local
    local.init(runner=local.SubprocessRunner())
    task = add(a=1, b=2)      # runs now, through the local engine
    assert task.output == 3

Unlike kfp.local, runs go through the same engine as `kubelab run` (parallel steps,
caching, a record in the run store), so a run started here shows up in
`kubelab runs list` and in the JupyterLab sidebar.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.errors import KubelabError

if TYPE_CHECKING:
    from kubelab.client.store import RunStore
    from kubelab.pipelines.local.engine import (
        RunResult,
        cancel_run,
        run_pipeline,
        start_from_task,
        start_run,
        wait_run,
    )

# The engine is imported when first used, not with the package: a cold `kubelab run`
# imports `local.preload` to start the fork server, and every millisecond before that
# start delays the notebook's first step.
_ENGINE_NAMES = {
    "RunResult",
    "cancel_run",
    "run_pipeline",
    "start_from_task",
    "start_run",
    "wait_run",
}


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        return getattr(importlib.import_module("kubelab.pipelines.local.engine"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DockerRunner",
    "LocalTask",
    "RunResult",
    "SubprocessRunner",
    "cancel_run",
    "execute_outside_pipeline",
    "init",
    "is_initialized",
    "run_pipeline",
    "start_from_task",
    "start_run",
    "wait_run",
]


@dataclass
class SubprocessRunner:
    """Run tasks as local processes (the only runner here).

    `use_venv` is accepted for kfp compatibility: kubelab always runs in the current
    interpreter and only builds a (cached) venv when `packages_to_install` names a
    package that is missing.
    """

    use_venv: bool = False


class DockerRunner:
    """kfp's Docker runner; not available on these machines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise KubelabError(
            "DockerRunner is not available: there is no Docker engine on this machine. "
            "Use local.SubprocessRunner() (tasks run as local processes, images are ignored) "
            "or the kubernetes backend."
        )


@dataclass
class _Config:
    runner: SubprocessRunner
    pipeline_root: str
    enable_caching: bool
    parallelism: int | None
    raise_on_error: bool
    store: RunStore | None


_config: _Config | None = None


def init(
    runner: SubprocessRunner | None = None,
    pipeline_root: str = "./local_outputs",
    enable_caching: bool = True,
    parallelism: int | None = None,
    raise_on_error: bool = True,
    store: RunStore | None = None,
    workspace_root: str | None = None,
    cache_root: str | None = None,
) -> None:
    """Start a local session: later component/pipeline calls run immediately.

    kfp.local's `workspace_root` and `cache_root` are accepted: each run's workspace
    (dsl.WORKSPACE_PATH_PLACEHOLDER) is `<pipeline_root>/<run id>/workspace`, and the
    cache lives in the run store, so that `kubelab runs` sees them.
    """
    global _config
    runner = runner if runner is not None else SubprocessRunner()
    if not isinstance(runner, SubprocessRunner):
        raise KubelabError(
            f"unknown runner {type(runner).__name__}; use kubelab.pipelines.local.SubprocessRunner()"
        )
    if parallelism is not None and parallelism < 1:
        raise KubelabError(f"parallelism must be at least 1, got {parallelism}")
    _config = _Config(
        runner=runner,
        pipeline_root=os.path.abspath(pipeline_root),
        enable_caching=enable_caching,
        parallelism=parallelism,
        raise_on_error=raise_on_error,
        store=store,
    )


def is_initialized() -> bool:
    return _config is not None


def _reset() -> None:
    """Forget the session (tests)."""
    global _config
    _config = None


class LocalTask:
    """The result of calling a component or pipeline outside a pipeline: real values."""

    def __init__(self, name: str, outputs: dict[str, Any], result: RunResult) -> None:
        self.name = name
        self.outputs = outputs
        self.run_id = result.run_id
        self.state = result.state
        self.result = result

    @property
    def output(self) -> Any:
        if len(self.outputs) == 1:
            return next(iter(self.outputs.values()))
        if not self.outputs:
            raise AttributeError(f"{self.name!r} has no outputs")
        raise AttributeError(
            f"{self.name!r} has several outputs ({', '.join(self.outputs)}); use .outputs[name]"
        )

    def __repr__(self) -> str:
        return f"LocalTask({self.name!r}, state={self.state!r}, outputs={self.outputs!r})"


def _to_python(value: Any, definitions: dict[str, Any], name: str) -> Any:
    if name not in definitions.get("artifacts", {}):
        return value
    from kubelab.pipelines.dsl.artifact_types import class_for_schema_title

    items = value if isinstance(value, list) else [value]
    objects = []
    for art in items:
        cls = class_for_schema_title(art.get("type", {}).get("schemaTitle", "system.Artifact"))
        objects.append(cls(name=art.get("name"), uri=art.get("uri"), metadata=art.get("metadata")))
    if definitions["artifacts"][name].get("isArtifactList"):
        return objects
    return objects[0] if objects else None


def execute_outside_pipeline(component_or_pipeline: Any, arguments: dict[str, Any]) -> LocalTask:
    """Compile, run now and return real outputs (what calling a component does after init)."""
    if _config is None:
        raise KubelabError(
            "local execution is not initialised: call "
            "kubelab.pipelines.local.init(runner=local.SubprocessRunner()) before calling a "
            "component or pipeline outside a pipeline"
        )
    from kubelab.pipelines import compiler
    from kubelab.pipelines.local import progress

    ir = compiler.build_pipeline_spec(component_or_pipeline)
    name = str(ir.get("pipelineInfo", {}).get("name") or "task")
    display = progress.notebook_progress(name)
    from kubelab.client.store import RunStore
    from kubelab.pipelines.local.engine import run_pipeline

    store = _config.store or RunStore()
    result = run_pipeline(
        ir,
        arguments,
        store=store,
        pipeline_root=_config.pipeline_root,
        enable_caching=_config.enable_caching,
        parallelism=_config.parallelism,
        # The user's prints appear as they happen, prefixed "[task]", as in kfp.local.
        on_event=progress.combine(display, progress.LogStreamer()),
    )
    if result.state != "succeeded":
        if _config.raise_on_error:
            raise KubelabError(f"{name} {result.state}: {result.error}", run=result.run_id)
        return LocalTask(name, {}, result)
    definitions = ir["root"].get("outputDefinitions", {})
    outputs = {
        key: _to_python(result.outputs[key], definitions, key)
        for key in [*definitions.get("parameters", {}), *definitions.get("artifacts", {})]
        if key in result.outputs
    }
    return LocalTask(name, outputs, result)
