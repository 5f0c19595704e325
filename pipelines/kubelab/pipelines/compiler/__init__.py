"""Compile pipelines to KFP v2 IR: `from kubelab.pipelines import compiler`."""

from kubelab.pipelines.compiler.compiler import Compiler
from kubelab.pipelines.compiler.loader import load_pipeline_file
from kubelab.pipelines.compiler.pipeline_spec_builder import (
    build_pipeline_spec,
    build_specs,
)

__all__ = ["Compiler", "build_pipeline_spec", "build_specs", "load_pipeline_file"]
