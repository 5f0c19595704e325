"""Compile pipeline files with the real kfp SDK (in .venv-kfp) to compare IR shapes.

The kfp SDK is never a kubelab dependency: it lives in a separate venv, and the
comparisons skip when that venv is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
KFP_PYTHON = REPO / ".venv-kfp" / "bin" / "python"


def has_kfp_kubernetes() -> bool:
    """Whether .venv-kfp also has kfp-kubernetes (needed by samples using dsl.kubernetes)."""
    return any((REPO / ".venv-kfp" / "lib").glob("python3*/site-packages/kfp/kubernetes"))


_SCRIPT = """
import json, os, pathlib, re, sys, tempfile, types
import yaml
from kfp import compiler
out = {}
for path in sys.argv[1:]:
    src = pathlib.Path(path).read_text()
    src = src.replace("from kubelab.pipelines.dsl import kubernetes", "from kfp import kubernetes")
    src = re.sub(r"\\bkubelab\\.pipelines\\b", "kfp", src)
    mod = types.ModuleType("kfp_sample_" + pathlib.Path(path).stem)
    mod.__file__ = path
    sys.modules[mod.__name__] = mod
    exec(compile(src, path, "exec"), mod.__dict__)
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "pipeline.yaml")
        parameters = getattr(mod, "PIPELINE_PARAMETERS", None)
        compiler.Compiler().compile(mod.pipeline, target, pipeline_parameters=parameters)
        text = pathlib.Path(target).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    out[path] = {
        "spec": docs[0],
        "platform": docs[1] if len(docs) > 1 else None,
        "header": [line for line in text.splitlines() if line.startswith("#")],
    }
print(json.dumps(out))
"""


def compile_with_kfp(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """{"spec": IR, "platform": PlatformSpec or None} by path, from the real kfp SDK
    after swapping the imports."""
    done = subprocess.run(
        [str(KFP_PYTHON), "-c", _SCRIPT, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"kfp compile failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def comparable(ir: dict[str, Any]) -> dict[str, Any]:
    """Drop what legitimately differs: the SDK version, and the Python launcher
    command, of which only the shipped function source must match."""
    ir = json.loads(json.dumps(ir))
    ir.pop("sdkVersion", None)
    for executor in ir["deploymentSpec"]["executors"].values():
        container = executor.get("container")
        if container and len(container.get("command", [])) == 7:
            source = container["command"][-1]
            container["command"] = ["python-launcher", source[source.find("def ") :].strip()]
    return ir
