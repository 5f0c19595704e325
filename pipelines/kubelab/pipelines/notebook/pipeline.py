"""`compile_notebook`: a .ipynb (or NotebookNode) -> a `NotebookPipeline`.

This is the I/O edge of the conversion: it reads the notebook, writes the generated
DSL module to a cache file keyed by its content hash (so `inspect.getsource` and
the compiler can read it like any hand-written pipeline file) and asks the shared
compiler for the IR.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook import codegen
from kubelab.pipelines.notebook.convert import Edge, NotebookGraph, Step, build_graph
from kubelab.pipelines.notebook.parameters import Parameter
from kubelab.pipelines.notebook.tags import Cell

if TYPE_CHECKING:
    import nbformat


def cache_dir() -> Path:
    """Where generated modules go: $KUBELAB_CACHE_DIR, else the user cache dir."""
    env = os.environ.get("KUBELAB_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kubelab"


@dataclass
class NotebookPipeline:
    """A notebook converted to a pipeline: the graph, the DSL module, and its IR."""

    name: str
    graph: NotebookGraph
    python_source: str
    module_path: Path
    source_path: str | None = None
    _spec: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def steps(self) -> list[Step]:
        return self.graph.steps

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return {n: {"type": p.type, "default": p.default} for n, p in self.graph.parameters.items()}

    @property
    def metrics(self) -> list[str]:
        return list(self.graph.metrics)

    @property
    def edges(self) -> list[Edge]:
        return self.graph.edges

    @property
    def warnings(self) -> list[str]:
        return list(self.graph.warnings)

    def parameter(self, name: str) -> Parameter:
        return self.graph.parameters[name]

    def pipeline_spec(self) -> dict[str, Any]:
        """The KFP v2 IR, from the same compiler hand-written pipelines use."""
        if self._spec is None:
            from kubelab.pipelines import compiler

            pipeline = compiler.load_pipeline_file(
                str(self.module_path), function_name=codegen.PIPELINE_FUNCTION
            )
            self._spec = compiler.build_pipeline_spec(pipeline)
        return self._spec

    def task_metadata(self) -> dict[str, dict[str, Any]]:
        """Task name in the IR -> the notebook cells and step it came from."""
        return {
            codegen.task_name(s.function_name): {"cells": list(s.cells), "step": s.name}
            for s in self.steps
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "steps": [s.to_json() for s in self.steps],
            "parameters": self.parameters,
            "metrics": self.metrics,
            "edges": [e.to_json() for e in self.edges],
            "cells": [
                {"index": index, "role": role, "step": step}
                for index, role, step in self.graph.cell_roles
            ],
        }


def read_cells(nb: dict[str, Any]) -> list[Cell]:
    """Code cells with their index among all cells (what Jupyter and the sidebar show)."""
    cells = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        tags = list(cell.get("metadata", {}).get("tags", []) or [])
        cells.append(Cell(index, source, tags))
    return cells


def load_notebook(
    path_or_node: str | os.PathLike[str] | nbformat.NotebookNode | dict[str, Any],
) -> tuple[dict[str, Any], str | None]:
    """(notebook as a dict, path or None); a bad file is a user error, not a crash.

    A version-4 notebook file is read as the JSON it is: importing nbformat pulls in
    jsonschema's format checkers, which cost seconds on a cold `kubelab run`; older
    versions go through nbformat's converter.
    """
    if isinstance(path_or_node, dict):
        return path_or_node, None
    path = Path(path_or_node)
    if not path.exists():
        from kubelab.pipelines.errors import NotFoundError

        raise NotFoundError(f"notebook {str(path)!r} does not exist", path=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("nbformat") == 4 and "cells" in data:
            return data, str(path)
        import nbformat

        return nbformat.read(path, as_version=4), str(path)
    except Exception as error:  # json and nbformat raise several unrelated types
        raise KubelabError(f"{path} is not a readable notebook: {error}", path=str(path)) from None


def _write_module(source: str) -> Path:
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    directory = cache_dir() / "notebooks"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"nb_{digest}.py"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w") as file:
            file.write(source)
        os.replace(tmp, path)
    return path


def compile_notebook(
    path_or_notebooknode: str | os.PathLike[str] | nbformat.NotebookNode | dict[str, Any],
    *,
    name: str | None = None,
) -> NotebookPipeline:
    """Convert a tagged notebook; KubelabError (with `cell` and `step`) on bad input."""
    nb, path = load_notebook(path_or_notebooknode)
    kale = nb.get("metadata", {}).get("kubeflow_notebook", {}) or {}
    if name is None:
        name = kale.get("pipeline_name") or (Path(path).stem if path else "notebook")
    graph = build_graph(read_cells(nb))
    if not graph.steps:
        raise KubelabError(
            "the notebook has no steps: tag a code cell with step:NAME", cell=None, step=None
        )
    source = codegen.generate(
        graph,
        name=name,
        description=kale.get("pipeline_description", "") or "",
        default_image=kale.get("base_image") or kale.get("docker_image") or codegen.DEFAULT_IMAGE,
        source=path or "",
        workdir=str(Path(path).resolve().parent) if path else None,
        enable_caching=kale.get("enable_caching")
        if isinstance(kale.get("enable_caching"), bool)
        else None,
    )
    return NotebookPipeline(
        name=name,
        graph=graph,
        python_source=source,
        module_path=_write_module(source),
        source_path=path,
    )
