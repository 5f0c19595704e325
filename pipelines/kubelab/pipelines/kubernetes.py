"""`from kubelab.pipelines import kubernetes` replaces `from kfp import kubernetes`.

The functions live in `kubelab.pipelines.dsl.kubernetes`; this module is the
spelling a kfp-kubernetes user's import swap arrives at.
"""

from kubelab.pipelines.dsl.kubernetes import *  # noqa: F403
from kubelab.pipelines.dsl.kubernetes import __all__  # noqa: F401
