"""The generated module is ordinary DSL code: valid Python, compiled to IR that KFP parses."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from nbfactory import build_notebook

from kubelab.pipelines.notebook import codegen, compile_notebook, runtime

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo.ipynb"
KFP_PYTHON = REPO / ".venv-kfp" / "bin" / "python"


def test_generated_module_is_valid_python_and_cached_by_content():
    nb = compile_notebook(DEMO)
    tree = ast.parse(nb.python_source)
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions == [
        "load_data", "train_forest", "train_logreg", "evaluate", "pipeline_metrics",
        codegen.PIPELINE_FUNCTION,
    ]  # fmt: skip
    assert nb.module_path.read_text() == nb.python_source
    assert compile_notebook(DEMO).module_path == nb.module_path  # same content, same file


def test_components_are_inspectable_from_the_module_file():
    from kubelab.pipelines import compiler

    nb = compile_notebook(DEMO)
    pipeline = compiler.load_pipeline_file(str(nb.module_path), codegen.PIPELINE_FUNCTION)
    assert pipeline is not None
    import importlib.util

    spec = importlib.util.spec_from_file_location("nbmod", nb.module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    func = getattr(module.evaluate, "python_func", module.evaluate)
    assert "_kl.run_cell(_ns, 11, 'evaluate'" in inspect.getsource(func)


def test_ir_parses_as_pipeline_spec_with_dag_matching_the_notebook():
    nb = compile_notebook(DEMO)
    ir = nb.pipeline_spec()
    json_format.ParseDict(ir, pipeline_spec_pb2.PipelineSpec())
    tasks = ir["root"]["dag"]["tasks"]
    assert set(tasks) == set(nb.task_metadata())
    deps = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert deps["train-forest"] == {"load-data"} and deps["train-logreg"] == {"load-data"}
    assert deps["evaluate"] == {"load-data", "train-forest", "train-logreg"}
    params = ir["root"]["inputDefinitions"]["parameters"]
    assert params["n_estimators"]["parameterType"] == "NUMBER_INTEGER"
    assert params["test_size"]["defaultValue"] == 0.3
    metrics_outputs = ir["components"]["comp-pipeline-metrics"]["outputDefinitions"]["artifacts"]
    assert metrics_outputs["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"


def test_task_metadata_keys_are_the_ir_task_names_for_odd_step_names():
    nb = compile_notebook(
        build_notebook(
            ("x = 1", "step:TrainModel"), ("y = x", "step:a__b"), ("z = y", "step:_c-d_"),
            ("metrics = z", "step:e"), ("metrics", "pipeline-metrics"),
        ),
        name="Odd Name!",
    )  # fmt: skip
    ir = nb.pipeline_spec()
    assert sorted(ir["root"]["dag"]["tasks"]) == sorted(nb.task_metadata())
    assert nb.task_metadata()["trainmodel"]["step"] == "TrainModel"
    assert ir["pipelineInfo"]["name"] == "odd-name"
    # A variable named `metrics` does not clash with the Metrics output argument.
    assert "kubelab_metrics: dsl.Output[dsl.Metrics]" in nb.python_source


def test_resources_reach_the_ir():
    nb = compile_notebook(
        build_notebook(("x = 1", "step:gpu", "limit:nvidia.com/gpu:1", "limit:memory:2Gi")),
        name="res",
    )
    ir = nb.pipeline_spec()
    json_format.ParseDict(ir, pipeline_spec_pb2.PipelineSpec())
    executor = ir["deploymentSpec"]["executors"]["exec-gpu"]["container"]
    resources = executor["resources"]
    assert resources["accelerator"]["resourceCount"] == "1"
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["resourceMemoryLimit"] == "2Gi"


@pytest.mark.skipif(not KFP_PYTHON.exists(), reason="no .venv-kfp with the real kfp SDK")
def test_generated_module_compiles_with_the_real_kfp_sdk(tmp_path):
    nb = compile_notebook(DEMO)
    source = nb.python_source.replace(codegen.DSL_IMPORT, "from kfp import dsl")
    module = tmp_path / "kfp_pipeline.py"
    module.write_text(source)
    script = textwrap.dedent(
        f"""
        import importlib.util, yaml
        from kfp import compiler
        spec = importlib.util.spec_from_file_location("m", {str(module)!r})
        m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        compiler.Compiler().compile(m.{codegen.PIPELINE_FUNCTION}, {str(tmp_path / "p.yaml")!r})
        print(sorted(yaml.safe_load(open({str(tmp_path / "p.yaml")!r}))["root"]["dag"]["tasks"]))
        """
    )
    out = subprocess.run([str(KFP_PYTHON), "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted(nb.task_metadata()))


def test_runtime_error_traceback_points_at_notebook_cell(capsys):
    ns = runtime.namespace("train")
    runtime.run_cell(ns, 3, "train", "def f(v):\n    return 1 / v\n")
    with pytest.raises(ZeroDivisionError) as info:
        runtime.run_cell(ns, 4, "train", "a = 1\nb = f(0)\n")
    frames = traceback.extract_tb(info.value.__traceback__)
    mine = [(f.filename, f.lineno, f.line) for f in frames if f.filename.startswith("<notebook")]
    # Cells are counted from 1 in what people read, as JupyterLab counts them.
    assert mine == [
        ("<notebook cell 5, step train>", 2, "b = f(0)"),
        ("<notebook cell 4, step train>", 2, "return 1 / v"),
    ]
    assert "failed in notebook cell 5, line 2" in capsys.readouterr().err
    # The engine is told where, as a 0-based index, to point the UI at the cell.
    assert info.value.kubelab_where == {"cell": 4, "line": 2}


def test_runtime_namespace_pickles_notebook_classes_by_value(tmp_path):
    ns = runtime.namespace("s")
    runtime.run_cell(
        ns, 0, "s", "class Point:\n    def __init__(self, x):\n        self.x = x\np = Point(3)"
    )
    runtime.save(ns, "p", str(tmp_path / "p"), step="s", cell=0)
    code = (
        "from kubelab.pipelines.notebook import marshal; "
        f"print(marshal.load({str(tmp_path / 'p')!r}).x)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "3", out.stderr


def test_kale_notebook_metadata_and_cache_tags():
    nb_node = build_notebook(
        ("n = 3", "pipeline-parameters"),
        ("m = [1] * n", "step:make", "cache:enabled"),
        ("s = sum(m)", "step:total", "prev:make"),
        ("print(n)\nprint(s)", "pipeline-metrics"),
    )
    nb_node.metadata["kubeflow_notebook"] = {
        "pipeline_name": "kale-style",
        "pipeline_description": "from Kale",
        "base_image": "python:3.12-slim",
        "enable_caching": False,
    }
    nb = compile_notebook(nb_node)
    assert nb.name == "kale-style" and "base_image='python:3.12-slim'" in nb.python_source
    tasks = nb.pipeline_spec()["root"]["dag"]["tasks"]
    caching = {
        name: t.get("cachingOptions", {}).get("enableCache", False) for name, t in tasks.items()
    }
    assert caching == {"make": True, "total": False, "pipeline-metrics": False}
    assert nb.metrics == ["n", "s"]  # a parameter may be reported as a metric


def test_step_runtime_needs_only_stdlib_and_cloudpickle(tmp_path):
    """Pods install kubelab with --no-deps and each notebook step adds cloudpickle."""
    import shutil

    import cloudpickle

    libs = tmp_path / "libs"
    shutil.copytree(Path(cloudpickle.__file__).parent, libs / "cloudpickle")
    script = textwrap.dedent(
        f"""
        import sys
        from kubelab.pipelines.notebook import runtime, marshal
        ns = runtime.namespace("s", {{"n": 3}})
        runtime.run_cell(ns, 0, "s", "def sq(v):\\n    return v * v\\nout = [sq(i) for i in range(n)]")
        runtime.save(ns, "out", {str(tmp_path / "out")!r}, step="s", cell=0)
        runtime.save(ns, "sq", {str(tmp_path / "sq")!r}, step="s", cell=0)
        ns2 = runtime.namespace("t")
        runtime.load(ns2, "out", {str(tmp_path / "out")!r})
        runtime.load(ns2, "sq", {str(tmp_path / "sq")!r})
        print(ns2["out"], ns2["sq"](4), "nbformat" in sys.modules, "numpy" in sys.modules)
        """
    )
    env = {"PYTHONPATH": f"{libs}:{REPO / 'pipelines'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[0,", "1,", "4]", "16", "False", "False"]


def test_every_step_asks_for_cloudpickle():
    nb = compile_notebook(DEMO)
    assert all(s.packages[0] == "cloudpickle" for s in nb.steps)
    assert "packages_to_install=['cloudpickle']" in nb.python_source


@pytest.mark.parametrize(
    "code",
    ["", "x = 1", "a\nb\n", "s = '''q'''\r\nt = \"\\\\\"\n", "u = 'é\u2028'\x0cv = 1", "\n\n"],
)
def test_code_literal_reads_back_exactly(code):
    assert eval(codegen.code_literal(code)) == code
