"""KFP samples (kfp_samples/*.py) compile to the same IR as the real kfp SDK gives."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubelab.pipelines import compiler

HERE = Path(__file__).resolve().parent
SAMPLES = sorted((HERE / "kfp_samples").glob("*.py"))


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load(HERE / "kfp_reference.py", "kubelab_kfp_reference")


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_sample_compiles_and_parses(path: Path) -> None:
    ir = compiler.build_pipeline_spec(_load(path, f"kfp_sample_{path.stem}").pipeline)
    json_format.ParseDict(ir, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)


@pytest.mark.skipif(not reference.KFP_PYTHON.exists(), reason="no .venv-kfp with the real kfp SDK")
def test_samples_match_real_kfp_compiler() -> None:
    samples = [
        path
        for path in SAMPLES
        if reference.has_kfp_kubernetes() or "import kubernetes" not in path.read_text()
    ]
    theirs = reference.compile_with_kfp(samples)
    assert len(samples) >= 8
    for path in samples:
        module = _load(path, f"kfp_sample_{path.stem}")
        spec, platform = compiler.build_specs(
            module.pipeline, getattr(module, "PIPELINE_PARAMETERS", None)
        )
        expected = theirs[str(path)]
        assert reference.comparable(spec) == reference.comparable(expected["spec"]), path.stem
        assert platform == expected["platform"], path.stem
