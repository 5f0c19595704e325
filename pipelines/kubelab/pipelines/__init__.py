"""Kubeflow-style pipelines that run on a laptop or on Kubeflow.

`from kubelab.pipelines import dsl, compiler, local` is the KFP v2 surface; the
submodules are imported on demand so that `kubelab --version` stays instant.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kubelab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
