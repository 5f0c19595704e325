"""`@dsl.notebook_component`: a component that runs a Jupyter notebook it carries.

The notebook travels inside the component (like `embedded_artifact_path`). In the
component function, `dsl.run_notebook(**params)` executes it with nbclient after
injecting the parameters as papermill does: an `injected-parameters` cell right
after the cell tagged `parameters`, or at the top when there is none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from kubelab.pipelines.errors import KubelabError

# The notebook the running component carries; set by the component module itself.
NOTEBOOK_PATH: str | None = None

DEFAULT_PACKAGES = ["nbclient>=0.10", "ipykernel>=6", "jupyter_client>=7"]


def notebook_file(path: str, component: str) -> str:
    """The .ipynb to embed: `path` itself, or the one notebook in directory `path`."""
    if os.path.isdir(path):
        found = sorted(f for f in os.listdir(path) if f.endswith(".ipynb"))
        if len(found) != 1:
            raise KubelabError(
                f"Component '{component}': notebook_path {path!r} must hold exactly one "
                f".ipynb file, found {len(found)}.",
                component=component,
            )
        return os.path.join(path, found[0])
    if not path.endswith(".ipynb") or not os.path.isfile(path):
        raise KubelabError(
            f"Component '{component}': notebook_path {path!r} is not a .ipynb file.",
            component=component,
        )
    return path


def inject_parameters(notebook: Any, params: dict[str, Any]) -> None:
    """Papermill's rule: override after the `parameters` cell, else set at the top."""
    import nbformat

    if not params:
        return
    lines = ["import json"] + [
        f"{name} = json.loads({json.dumps(value)!r})" for name, value in params.items()
    ]
    cell = nbformat.v4.new_code_cell(source="\n".join(lines) + "\n")
    cell.metadata["tags"] = ["injected-parameters"]
    cells = notebook.cells
    position = next(
        (i + 1 for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])), 0
    )
    cells.insert(position, cell)


def _show_outputs(notebook: Any) -> None:
    """Print what the cells printed, so that the task's log shows it."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                print(output.get("text", ""), end="", flush=True)
            elif output.get("output_type") in ("execute_result", "display_data"):
                text = output.get("data", {}).get("text/plain")
                if text:
                    print(text, flush=True)


def run_notebook(**params: Any) -> None:
    """Run the component's notebook with `params` set in it (inside a notebook component)."""
    if NOTEBOOK_PATH is None:
        raise KubelabError(
            "dsl.run_notebook() runs the notebook of a @dsl.notebook_component, inside its "
            "function while the task runs."
        )
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(NOTEBOOK_PATH, as_version=4)
    inject_parameters(notebook, params)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK_PATH)}},
    )
    try:
        client.execute()
    except CellExecutionError as error:
        _show_outputs(notebook)
        raise RuntimeError(
            f"The notebook {os.path.basename(NOTEBOOK_PATH)} failed: {error}"
        ) from None
    _show_outputs(notebook)


def notebook_component(
    func: Callable | None = None,
    *,
    notebook_path: str,
    base_image: str | None = None,
    packages_to_install: list[str] | None = None,
    output_component_file: str | None = None,
    pip_index_urls: list[str] | None = None,
    pip_trusted_hosts: list[str] | None = None,
    use_venv: bool = False,
    kfp_package_path: str | None = None,
    install_kfp_package: bool = True,
    task_config_passthroughs: list[Any] | None = None,
    kubelab_package_path: str | None = None,
) -> Any:
    """Decorator (KFP's signature): the function runs `dsl.run_notebook(...)` on the
    notebook at `notebook_path`. Without `packages_to_install`, the task installs
    nbclient and ipykernel; `[]` installs nothing. `output_component_file`,
    `pip_trusted_hosts`, `use_venv`, `kfp_package_path`, `install_kfp_package` and
    `task_config_passthroughs` are accepted for compatibility and ignored."""
    from kubelab.pipelines.dsl.python_component import PythonComponent

    packages = DEFAULT_PACKAGES if packages_to_install is None else packages_to_install

    def decorate(f: Callable) -> PythonComponent:
        return PythonComponent(
            f,
            base_image=base_image,
            packages_to_install=packages,
            pip_index_urls=pip_index_urls,
            kubelab_package_path=kubelab_package_path,
            embedded_artifact_path=notebook_file(notebook_path, f.__name__),
            embeds_notebook=True,
        )

    return decorate(func) if func is not None else decorate
