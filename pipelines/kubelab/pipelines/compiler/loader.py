"""`load_pipeline_file`: import a user's .py file and find the pipeline in it."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
import uuid
from typing import Any

from kubelab.pipelines.dsl.base_component import BaseComponent
from kubelab.pipelines.dsl.graph_component import GraphComponent
from kubelab.pipelines.errors import KubelabError, NotFoundError


def _import_file(path: str) -> Any:
    module_name = f"_kubelab_pipeline_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise KubelabError(f"Cannot import {path}: not a Python file.", path=path)
    module = importlib.util.module_from_spec(spec)
    directory = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, directory)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except KubelabError as error:
        raise KubelabError(f"{path}: {error.message}", path=path, **error.details) from error
    except Exception as error:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
        line = frames[-1].lineno if frames else None
        where = f"{path}, line {line}" if line else path
        raise KubelabError(
            f"Importing {where} failed: {type(error).__name__}: {error}",
            path=path,
            line=line,
        ) from error
    finally:
        if sys.path and sys.path[0] == directory:
            sys.path.pop(0)
    return module


def load_pipeline_file(path: str, function_name: str | None = None) -> Any:
    """The `@dsl.pipeline` defined in `path` (or the object named `function_name`)."""
    if not os.path.isfile(path):
        raise NotFoundError(f"Pipeline file not found: {path}", path=path)
    module = _import_file(path)
    if function_name is not None:
        obj = getattr(module, function_name, None)
        if not isinstance(obj, BaseComponent):
            candidates = _pipelines(module)
            raise KubelabError(
                f"{path} has no pipeline or component named '{function_name}'"
                + (f"; pipelines found: {', '.join(candidates)}." if candidates else "."),
                path=path,
                function=function_name,
                candidates=list(candidates),
            )
        return obj
    candidates = _pipelines(module)
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    if not candidates:
        raise KubelabError(f"{path} defines no @dsl.pipeline function.", path=path, candidates=[])
    raise KubelabError(
        f"{path} defines several pipelines ({', '.join(candidates)}); choose one by name.",
        path=path,
        candidates=list(candidates),
    )


def _pipelines(module: Any) -> dict[str, GraphComponent]:
    """Pipelines defined in the module itself (not imported from elsewhere)."""
    found: dict[str, GraphComponent] = {}
    for name, obj in vars(module).items():
        if isinstance(obj, GraphComponent) and obj.python_func.__module__ == module.__name__:
            found[name] = obj
    return found
