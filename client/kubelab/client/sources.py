"""What a run starts from: a tagged notebook, a Python pipeline file or compiled IR.

`load_pipeline` turns any of them into the IR every backend runs, plus what the local
engine can use (task metadata naming notebook cells, modules worth preloading).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError, NotFoundError


@dataclass
class PipelineSource:
    ir: dict[str, Any]
    task_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Modules the local engine imports once before the steps run (notebook imports).
    preload: list[str] = field(default_factory=list)
    path: str | None = None
    # Kubernetes settings (kfp-kubernetes' PlatformSpec), for Kubeflow Pipelines.
    platform_spec: dict[str, Any] | None = None


def load_pipeline(source: str | os.PathLike[str], function: str | None = None) -> PipelineSource:
    """The IR (and notebook metadata) of a .ipynb, a .py pipeline or a .yaml/.json IR."""
    path = Path(source)
    if not path.exists():
        raise NotFoundError(f"no such file: {source}", path=str(source))
    suffix = path.suffix.lower()
    if suffix == ".ipynb":
        from kubelab.pipelines.notebook import compile_notebook
        from kubelab.pipelines.notebook.run import preload_modules

        nb = compile_notebook(str(path))
        return PipelineSource(
            nb.pipeline_spec(), nb.task_metadata(), preload_modules(nb), str(path.resolve())
        )
    if suffix == ".py":
        from kubelab.pipelines import compiler

        pipeline = compiler.load_pipeline_file(str(path), function_name=function)
        spec, platform = compiler.build_specs(pipeline)
        return PipelineSource(spec, path=str(path.resolve()), platform_spec=platform)
    if suffix in (".yaml", ".yml", ".json"):
        from kubelab.pipelines.local.ir import load_ir_documents

        spec, platform = load_ir_documents(path)
        return PipelineSource(spec, path=str(path.resolve()), platform_spec=platform)
    raise KubelabError(
        f"cannot tell what {source} is: expected a .ipynb notebook, a .py pipeline or a "
        ".yaml/.json compiled pipeline",
        path=str(source),
    )
