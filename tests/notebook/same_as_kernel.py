"""Compare a notebook pipeline's metrics with the notebook run top to bottom in a kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kernel_reference import run_all_in_kernel

from kubelab.pipelines.notebook import run_notebook


def run_pipeline(path: Path, out: Path, **options: Any) -> Any:
    result = run_notebook(path, pipeline_root=out, **{"enable_caching": False, **options})
    assert result.state == "succeeded", result.error
    return result


def assert_same_as_kernel(path: Path, out: Path, names: list[str]) -> Any:
    """Run both ways; the run's metrics `names` equal the kernel's values. Returns the run."""
    result = run_pipeline(path, out)
    kernel = run_all_in_kernel(path, names)
    metrics = result.run()["metrics"]
    assert {n: metrics[n] for n in names} == {n: float(kernel[n]) for n in names}
    return result
