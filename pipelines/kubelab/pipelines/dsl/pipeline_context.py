"""The pipeline being defined (`with Pipeline(...)`) and the `@dsl.pipeline` decorator.

While a pipeline function runs, calling a component records a task here instead
of running it; groups (`with dsl.ParallelFor(...)`) nest through `group_stack`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.dsl.tasks_group import RootGroup, TasksGroup
from kubelab.pipelines.errors import KubelabError

if TYPE_CHECKING:
    from kubelab.pipelines.dsl.graph_component import GraphComponent
    from kubelab.pipelines.dsl.pipeline_task import PipelineTask


def sanitize_name(name: str) -> str:
    """KFP's sanitize_k8s_name: lower case, [-a-z0-9], no repeated or edge dashes."""
    name = re.sub(r"[^-0-9a-z]+", "-", name.lower())
    return re.sub(r"-+", "-", name).strip("-")


_local = threading.local()


def _stack() -> list[Pipeline]:
    """Pipelines being defined in this thread (the server may compile in threads)."""
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


class Pipeline:
    """Recorder for one pipeline definition."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tasks: dict[str, PipelineTask] = {}
        self.root = RootGroup()
        self.root.name = "root"
        self.group_stack: list[TasksGroup] = [self.root]
        # Channels by their str() pattern, to find them again in f-string constants.
        self.formatted: dict[str, Any] = {}
        self._next_id = 0

    @classmethod
    def get_default_pipeline(cls) -> Pipeline | None:
        stack = _stack()
        return stack[-1] if stack else None

    def __enter__(self) -> Pipeline:
        _stack().append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _stack().pop()

    @property
    def current_group(self) -> TasksGroup:
        return self.group_stack[-1]

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def push_group(self, group: TasksGroup) -> None:
        group.parent = self.current_group
        self.current_group.children.append(group)
        self.group_stack.append(group)

    def pop_group(self, group: TasksGroup | None) -> None:
        if self.group_stack[-1] is not group:
            raise KubelabError(f"Control-flow blocks are not properly nested at {group!r}.")
        self.group_stack.pop()

    def add_task(self, task: PipelineTask, base_name: str) -> str:
        """Register a task in the current group; returns its unique name."""
        base = sanitize_name(base_name) or "task"
        name, n = base, 1
        while name in self.tasks:
            n += 1
            name = f"{base}-{n}"
        self.tasks[name] = task
        task.parent = self.current_group
        self.current_group.children.append(task)
        return name


def pipeline(
    func: Callable | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    pipeline_root: str | None = None,
    display_name: str | None = None,
    pipeline_config: Any = None,
) -> Any:
    """Turn a function that wires components into a pipeline (a GraphComponent).

    The body runs once, now, with channels in place of the parameters — as KFP
    does — so wiring errors surface at definition time.
    """
    from kubelab.pipelines.dsl.graph_component import GraphComponent

    def decorate(f: Callable) -> GraphComponent:
        return GraphComponent(
            f,
            name=name,
            description=description,
            pipeline_root=pipeline_root,
            display_name=display_name,
            pipeline_config=pipeline_config,
        )

    return decorate(func) if func is not None else decorate
