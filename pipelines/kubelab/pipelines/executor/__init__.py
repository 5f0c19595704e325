"""The component-side runtime (what `python -m kubelab.pipelines.executor_main` runs)."""

from kubelab.pipelines.executor.executor import Executor, execute, load_function

__all__ = ["Executor", "execute", "load_function"]
