"""Kubeflow-style pipelines that run on a laptop or on Kubeflow.

`from kubelab.pipelines import dsl, compiler, components, local, kubernetes` is the
KFP v2 surface, and so is `import kubelab.pipelines as kfp` followed by `kfp.dsl`,
`kfp.compiler.Compiler()` or `kfp.Client()`. The submodules are imported on first
use, so that `kubelab --version` stays instant.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

_SUBMODULES = ("compiler", "components", "dsl", "kubernetes", "local")

__all__ = ["Client", "__version__", *_SUBMODULES]


@functools.cache
def _version() -> str:
    # Looked up on first use: scanning the installed distributions costs tens of ms,
    # which every task's and fork server's start would pay otherwise.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kubelab")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "Client":
        # kfp.Client's place; the client layer sits above pipelines, so look it up late.
        try:
            return importlib.import_module("kubelab.client").Client
        except (ImportError, AttributeError):
            raise AttributeError(
                "kubelab.pipelines.Client needs kubelab.client.Client, which this "
                "installation does not have"
            ) from None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
