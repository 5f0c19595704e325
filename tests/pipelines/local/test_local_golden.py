"""Every golden pipeline runs on the local engine and produces its expected outputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from kubelab.client.store import RunStore
from kubelab.pipelines import compiler
from kubelab.pipelines.local.engine import run_pipeline

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"


def _golden_package() -> Any:
    spec = importlib.util.spec_from_file_location("kubelab_golden", GOLDEN_DIR / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


golden = _golden_package()


def _actual(outputs: dict[str, Any], key: str) -> Any:
    if key.endswith(".text"):
        artifact = outputs[key[: -len(".text")]]
        artifact = artifact[0] if isinstance(artifact, list) else artifact
        return Path(artifact["uri"]).read_text()
    return outputs[key]


@pytest.mark.parametrize("name", golden.GOLDEN_NAMES)
def test_golden_pipeline_runs_locally(name: str, tmp_path: Path) -> None:
    module = golden.load_golden(name)
    ir = compiler.build_pipeline_spec(module.pipeline)
    store = RunStore(tmp_path / "runs.db")
    result = run_pipeline(ir, module.ARGUMENTS, store=store, pipeline_root=tmp_path / "out")
    assert result.state == "succeeded", result.error
    actual = {key: _actual(result.outputs, key) for key in module.EXPECTED_OUTPUTS}
    assert actual == module.EXPECTED_OUTPUTS
    expected_states = getattr(module, "EXPECTED_TASK_STATES", None)
    if expected_states:
        by_display = {s["display_name"]: s["state"].upper() for s in result.run()["steps"]}
        assert {k: by_display.get(k) for k in expected_states} == expected_states


def test_ir_compiled_by_the_real_kfp_sdk_runs(tmp_path: Path) -> None:
    """kfp's own lightweight components (`from kfp import dsl`) run on kubelab's DSL."""
    from kubelab.pipelines.local.ir import load_ir_file

    ir = load_ir_file(Path(__file__).parent / "data" / "kfp_sdk_ref.yaml")
    assert ir["sdkVersion"].startswith("kfp-")
    store = RunStore(tmp_path / "runs.db")
    result = run_pipeline(ir, {"x": 3}, store=store, pipeline_root=tmp_path / "out")
    assert result.state == "succeeded", result.error
    steps = {s["name"]: s for s in result.run()["steps"]}
    prefix = "exit-handler-1/"
    assert steps[prefix + "total"]["outputs"] == {"Output": 21}  # (1+5) + (2+5) + (3+5)
    assert steps[prefix + "condition-branches-3/condition-4/read"]["outputs"] == {"Output": "21"}
    assert steps[prefix + "condition-branches-3/condition-5/add-3"]["state"] == "skipped"
    assert steps[prefix + "inner/add"]["outputs"] == {"Output": 22}
    assert steps["exit-op"]["outputs"] == {"Output": "SUCCEEDED"}
