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
    ) -> None:
        name = func.__name__
        inputs, outputs = interface_from_function(func, name)
        super().__init__(name, inputs, outputs, describe_from_docstring(func, inputs, outputs))
        self.python_func = func
        self.base_image = base_image or DEFAULT_BASE_IMAGE
        self.packages_to_install = list(packages_to_install or [])
        self.pip_index_urls = list(pip_index_urls or [])
        self.kubelab_package_path = kubelab_package_path or DEFAULT_KUBELAB_PACKAGE
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    @functools.cached_property
    def source(self) -> str:
        """The module the executor runs: KFP's preamble, then the function."""
        return COMPONENT_PREAMBLE + "\n" + function_source(self.python_func)

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
) -> Any:
    """Decorator that makes a Python function a pipeline component (KFP signature).

    `target_image`, `output_component_file`, `install_kfp_package`, `kfp_package_path`,
    `pip_trusted_hosts` and `use_venv` are accepted for compatibility and ignored.
    """

    def decorate(f: Callable) -> PythonComponent:
        return PythonComponent(
            f,
            base_image=base_image,
            packages_to_install=packages_to_install,
            pip_index_urls=pip_index_urls,
            kubelab_package_path=kubelab_package_path,
        )

    return decorate(func) if func is not None else decorate
