"""KFP sample: compiled YAML loaded back as components (one container component, and a
whole pipeline used as a sub-DAG), compiled by kubelab and by kfp."""

import os
import tempfile

from kubelab.pipelines import compiler, components, dsl


@dsl.component
def add(a: int, b: int = 1) -> int:
    """Adds two numbers."""
    return a + b


@dsl.component
def mul(a: int, b: int = 2) -> int:
    return a * b


# Names inside the loaded pipeline do not collide with the outer ones: where they do,
# KFP's renaming follows protobuf map order, which varies between processes.
@dsl.pipeline
def inner(x: int = 3) -> int:
    first = mul(a=x)
    return mul(a=first.output, b=x).output


with tempfile.TemporaryDirectory() as tmp:
    compiler.Compiler().compile(add, os.path.join(tmp, "add.yaml"))
    compiler.Compiler().compile(inner, os.path.join(tmp, "inner.yaml"))
    loaded_add = components.load_component_from_file(os.path.join(tmp, "add.yaml"))
    with open(os.path.join(tmp, "inner.yaml")) as handle:
        loaded_inner = components.load_component_from_text(handle.read())


@dsl.pipeline
def pipeline(n: int = 2) -> int:
    one = loaded_add(a=n)
    nested = loaded_inner(x=one.output)
    return add(a=nested.output).output
