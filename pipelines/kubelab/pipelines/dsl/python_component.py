"""`@dsl.component`: lightweight Python components.

The executor mirrors KFP's: the function source travels inside the command and
`kubelab.pipelines.executor_main` runs it, so the image needs only Python and
the kubelab runtime (installed on the fly when missing).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import shlex
import textwrap
from collections.abc import Callable
from typing import Any

from kubelab.pipelines.dsl.base_component import (
    BaseComponent,
    describe_from_docstring,
    interface_from_function,
)
from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.requirements import RUNTIME_MARK

DEFAULT_BASE_IMAGE = "python:3.11"
DEFAULT_KUBELAB_PACKAGE = "kubelab"

COMPONENT_PREAMBLE = (
    "from kubelab.pipelines import dsl\nfrom kubelab.pipelines.dsl import *\nfrom typing import *\n"
)

EXECUTOR_SCRIPT = (
    "program_path=$(mktemp -d)\n"
    'printf "%s" "$0" > "$program_path/ephemeral_component.py"\n'
    "_KFP_RUNTIME=true python3 -m kubelab.pipelines.executor_main "
    '--component_module_path "$program_path/ephemeral_component.py" "$@"\n'
)

_PIP = "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location"


def function_source(func: Callable) -> str:
    """The function's own source, dedented, without decorators (as KFP ships it)."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError) as error:
        raise KubelabError(
            f"Component '{func.__name__}': cannot read the function source ({error}); "
            "define components in a .py file or a notebook cell.",
            component=func.__name__,
        ) from error
    lines = textwrap.dedent(source).split("\n")
    body = itertools.dropwhile(lambda line: not line.startswith(("def ", "async def ")), lines)
    return "\n".join(body).rstrip() + "\n"


EMBEDDED_PATH_GLOBAL = "_KUBELAB_EMBEDDED_PATH"

# Unpacks the archive shipped in the module (embedded_artifact_path); module statements
# only, so that the component function stays the first `def` of the module.
_EMBEDDED_PREAMBLE = """\
import base64 as _kubelab_base64
import io as _kubelab_io
import os as _kubelab_os
import sys as _kubelab_sys
import tarfile as _kubelab_tarfile
import tempfile as _kubelab_tempfile

_KUBELAB_EMBEDDED_DIR = _kubelab_tempfile.mkdtemp(prefix="kubelab-embedded-")
with _kubelab_tarfile.open(
    fileobj=_kubelab_io.BytesIO(_kubelab_base64.b64decode(_KUBELAB_EMBEDDED_ARCHIVE)), mode="r:gz"
) as _kubelab_archive:
    _kubelab_archive.extractall(_KUBELAB_EMBEDDED_DIR, filter="data")
if _KUBELAB_EMBEDDED_DIR not in _kubelab_sys.path:
    _kubelab_sys.path.insert(0, _KUBELAB_EMBEDDED_DIR)
_KUBELAB_EMBEDDED_PATH = _kubelab_os.path.join(_KUBELAB_EMBEDDED_DIR, _KUBELAB_EMBEDDED_NAME)
"""


# A notebook component's module points dsl.run_notebook at the notebook it carries.
_NOTEBOOK_BINDING = """\
from kubelab.pipelines.dsl import notebooks as _kubelab_notebooks

_kubelab_notebooks.NOTEBOOK_PATH = _KUBELAB_EMBEDDED_PATH
"""


def embedded_archive_source(path: str, component: str) -> str:
    """Module lines that carry `path` (a file or a directory) as a base64 tar.gz."""
    import base64
    import io
    import os
    import tarfile

    if not os.path.exists(path):
        raise KubelabError(
            f"Component '{component}': embedded_artifact_path {path!r} does not exist.",
            component=component,
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        if os.path.isdir(path):
            for entry in sorted(os.listdir(path)):
                archive.add(os.path.join(path, entry), arcname=entry)
            name = ""
        else:
            name = os.path.basename(path)
            archive.add(path, arcname=name)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f"_KUBELAB_EMBEDDED_ARCHIVE = {encoded!r}\n_KUBELAB_EMBEDDED_NAME = {name!r}\n"
        + _EMBEDDED_PREAMBLE
    )


def install_snippet(
    packages: list[str], kubelab_package_path: str, pip_index_urls: list[str]
) -> str:
    """Shell that installs only what is missing, then execs the next command."""
    index = ""
    if pip_index_urls:
        index = " --index-url " + shlex.quote(pip_index_urls[0])
        index += "".join(f" --extra-index-url {shlex.quote(u)}" for u in pip_index_urls[1:])
    lines = [
        'if ! python3 -c "import kubelab.pipelines.executor_main" 2>/dev/null; then',
        # The runtime (dsl + executor) needs only the standard library, like kfp's.
        f"  {_PIP}{index} {shlex.quote(kubelab_package_path)} --no-deps  {RUNTIME_MARK}",
        "fi",
    ]
    if packages:
        # pip runs unless every requirement is installed *in a version it allows*.
        listed = " ".join(shlex.quote(p) for p in packages)
        lines += [
            f"if ! python3 -m kubelab.pipelines.requirements {listed}; then",
            f"  {_PIP}{index} {listed}",
            "fi",
        ]
    return "\n".join(lines) + '\n"$0" "$@"\n'


class PythonComponent(BaseComponent):
    """A component whose body is a Python function."""

    def __init__(
        self,
        func: Callable,
        *,
        base_image: str | None = None,
        packages_to_install: list[str] | None = None,
        pip_index_urls: list[str] | None = None,
        kubelab_package_path: str | None = None,
        additional_funcs: list[Callable] | None = None,
        embedded_artifact_path: str | None = None,
        embeds_notebook: bool = False,
    ) -> None:
        name = func.__name__
        inputs, outputs = interface_from_function(func, name)
        super().__init__(name, inputs, outputs, describe_from_docstring(func, inputs, outputs))
        self.python_func = func
        self.base_image = base_image or DEFAULT_BASE_IMAGE
        self.packages_to_install = list(packages_to_install or [])
        self.pip_index_urls = list(pip_index_urls or [])
        self.kubelab_package_path = kubelab_package_path or DEFAULT_KUBELAB_PACKAGE
        for helper in additional_funcs or []:
            if not inspect.isfunction(helper):
                raise KubelabError(
                    f"Component '{name}': additional_funcs takes functions, got {helper!r}.",
                    component=name,
                )
        self.additional_funcs = list(additional_funcs or [])
        self.embedded = (
            embedded_archive_source(embedded_artifact_path, name)
            if embedded_artifact_path is not None
            else ""
        )
        if embeds_notebook:
            self.embedded += _NOTEBOOK_BINDING
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    @functools.cached_property
    def source(self) -> str:
        """The module the executor runs: KFP's preamble, the embedded archive if any,
        the helper functions (`additional_funcs`), then the function."""
        parts = [COMPONENT_PREAMBLE]
        if self.embedded:
            parts.append(self.embedded)
        functions = [function_source(f) for f in [*self.additional_funcs, self.python_func]]
        return "\n".join(parts) + "\n" + "\n\n".join(functions)

    def executor_spec(self) -> dict[str, Any]:
        snippet = install_snippet(
            self.packages_to_install, self.kubelab_package_path, self.pip_index_urls
        )
        return {
            "container": {
                "image": self.base_image,
                "command": ["sh", "-c", snippet, "sh", "-ec", EXECUTOR_SCRIPT, self.source],
                "args": [
                    "--executor_input",
                    "{{$}}",
                    "--function_to_execute",
                    self.python_func.__name__,
                ],
            }
        }


def component(
    func: Callable | None = None,
    *,
    base_image: str | None = None,
    target_image: str | None = None,
    packages_to_install: list[str] | None = None,
    pip_index_urls: list[str] | None = None,
    output_component_file: str | None = None,
    install_kfp_package: bool = True,
    kfp_package_path: str | None = None,
    kubelab_package_path: str | None = None,
    pip_trusted_hosts: list[str] | None = None,
    use_venv: bool = False,
    additional_funcs: list[Callable] | None = None,
    embedded_artifact_path: str | None = None,
    task_config_passthroughs: list[Any] | None = None,
) -> Any:
    """Decorator that makes a Python function a pipeline component (KFP signature).

    `additional_funcs` ship helper functions with the component; `embedded_artifact_path`
    ships a file or directory, read through a `dsl.EmbeddedInput[...]` parameter.
    `target_image`, `output_component_file`, `install_kfp_package`, `kfp_package_path`,
    `pip_trusted_hosts`, `use_venv` and `task_config_passthroughs` are accepted for
    compatibility and ignored.
    """

    def decorate(f: Callable) -> PythonComponent:
        return PythonComponent(
            f,
            base_image=base_image,
            packages_to_install=packages_to_install,
            pip_index_urls=pip_index_urls,
            kubelab_package_path=kubelab_package_path,
            additional_funcs=additional_funcs,
            embedded_artifact_path=embedded_artifact_path,
        )

    return decorate(func) if func is not None else decorate
