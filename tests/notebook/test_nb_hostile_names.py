"""No user string becomes code: hostile text in every place where the notebook reaches
the generated DSL module (file name, Kale pipeline name and description, step tag,
parameter value, metric name, image tag) is data, never run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbfactory import build_notebook

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook import compile_notebook

PAYLOAD = '__import__("os").system("touch PWNED")'
HOSTILE = f"a\"\"\";{PAYLOAD};\"\"\"''';{PAYLOAD};'''\n{PAYLOAD}#"


def hostile_notebook(folder: Path, file_name: str) -> Path:
    nb = build_notebook(
        ("import os", "imports"),
        (f"label = {HOSTILE!r}\nrepeats = 2", "pipeline-parameters"),
        ("text = label * repeats", "step:build", f"image:python:3.11');{PAYLOAD};('"),
        ("size = len(text)", "step:measure", "limit:memory:1Gi"),
        ("size", "pipeline-metrics"),
    )
    nb.metadata["kubeflow_notebook"] = {
        "pipeline_name": HOSTILE,
        "pipeline_description": HOSTILE,
        "docker_image": f"img\"');{PAYLOAD}",
    }
    path = folder / file_name
    nbformat.write(nb, path)
    return path


def assert_not_pwned(*folders: Path) -> None:
    for folder in folders:
        assert not (folder / "PWNED").exists(), f"a user string ran as code in {folder}"


@pytest.mark.parametrize(
    "file_name",
    [f'a""";{PAYLOAD};""".ipynb', f"b''';{PAYLOAD};'''.ipynb", 'c\\";x.ipynb'],
)
def test_hostile_file_names_and_metadata_stay_data(tmp_path: Path, file_name: str) -> None:
    path = hostile_notebook(tmp_path, file_name)
    pipeline = compile_notebook(path)
    assert_not_pwned(tmp_path, Path.cwd())
    module = ast.parse(pipeline.python_source)
    assert str(path) in ast.get_docstring(module)
    # The hostile texts are string constants in the module, not statements.
    calls = [
        n.func.attr
        for n in ast.walk(module)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    ]
    assert "system" not in calls
    ir = pipeline.pipeline_spec()
    assert ir["root"]["inputDefinitions"]["parameters"]["label"]["defaultValue"] == HOSTILE
    assert ir["pipelineInfo"]["description"] == HOSTILE
    images = {e["container"]["image"] for e in ir["deploymentSpec"]["executors"].values()}
    assert f"python:3.11');{PAYLOAD};('" in images


def test_the_cli_compiles_and_emits_hostile_names_without_running_them(tmp_path: Path) -> None:
    path = hostile_notebook(tmp_path, f'd""";{PAYLOAD};""".ipynb')
    for extra in ([], ["--emit-python"]):
        done = subprocess.run(
            [sys.executable, "-m", "kubelab.client.cli", "compile", path.name, *extra],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
    assert_not_pwned(tmp_path)


def test_hostile_step_tag_is_refused_with_the_cell(tmp_path: Path) -> None:
    nb = build_notebook(("x = 1", f'step:a");{PAYLOAD};("'))
    with pytest.raises(KubelabError) as info:
        compile_notebook(nb, name="t")
    assert info.value.details["cell"] == 0
    assert_not_pwned(tmp_path, Path.cwd())
