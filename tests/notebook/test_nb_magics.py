"""IPython magics and shell lines become plain Python, keeping line numbers."""

from __future__ import annotations

import ast
import subprocess

import pytest
from nbfactory import build_notebook

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook import compile_notebook
from kubelab.pipelines.notebook.magics import translate


def test_valid_python_is_untouched():
    src = "s = '''\n%not a magic\n!nor this\n'''\nx = 5 % 2"
    assert translate(src, cell=0, step="a").source == src


def test_line_magics_stripped_with_comment_and_same_line_count():
    src = "%matplotlib inline\n%load_ext autoreload\nx = 1\nif x:\n    %timeit x + 1\n"
    out = translate(src, cell=3, step="a")
    assert out.source.count("\n") == src.count("\n")
    lines = out.source.split("\n")
    assert lines[0] == "pass  # kubelab: stripped IPython magic %matplotlib inline"
    assert lines[4] == "    pass  # kubelab: stripped IPython magic %timeit x + 1"
    ast.parse(out.source)
    assert len(out.notes) == 3


def test_pip_install_becomes_packages_to_install():
    out = translate("!pip install -q scikit-learn==1.5 'pandas>=2'\n%pip install -U torch\nx = 1",
                    cell=0, step="a")  # fmt: skip
    assert out.packages == ["scikit-learn==1.5", "pandas>=2", "torch"]
    ast.parse(out.source)


def test_shell_line_runs_subprocess(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    out = translate(f"!echo hi > {work}/out.txt\nfiles = !ls {work}", cell=0, step="a")
    ns: dict = {}
    exec(compile(out.source, "<cell>", "exec"), ns)
    assert (work / "out.txt").read_text() == "hi\n"
    assert ns["files"] == ["out.txt"]


def test_failing_shell_line_raises():
    out = translate("!exit 3", cell=0, step="a")
    with pytest.raises(subprocess.CalledProcessError):
        exec(compile(out.source, "<cell>", "exec"), {})


def test_time_cell_magic_is_stripped():
    out = translate("%%time\nx = 1\ny = x + 1", cell=0, step="a")
    ns: dict = {}
    exec(compile(out.source, "<cell>", "exec"), ns)
    assert ns["y"] == 2
    assert out.source.count("\n") == 2


def test_bash_cell_magic_runs_as_script(tmp_path):
    out = translate(f"%%bash\ncd {tmp_path}\necho ok > done.txt", cell=0, step="a")
    exec(compile(out.source, "<cell>", "exec"), {})
    assert (tmp_path / "done.txt").read_text() == "ok\n"


def test_unknown_cell_magic_names_the_cell():
    with pytest.raises(KubelabError) as info:
        translate("%%javascript\nalert(1)", cell=7, step="plot")
    assert info.value.details == {"cell": 7, "step": "plot"}
    assert "%%javascript" in info.value.message


def test_assigned_line_magic_is_an_error():
    with pytest.raises(KubelabError) as info:
        translate("x = 1\nt = %timeit -o f()", cell=2, step="s")
    assert info.value.details == {"cell": 2, "step": "s", "line": 2}


def test_packages_reach_the_component_decorator():
    nb = compile_notebook(
        build_notebook(("!pip install tabulate\nx = 1", "step:a"), ("y = x", "step:b")), name="m"
    )
    assert nb.steps[0].packages == ["cloudpickle", "tabulate"]
    assert nb.steps[1].packages == ["cloudpickle"]
    assert "packages_to_install=['cloudpickle', 'tabulate']" in nb.python_source
    assert any("packages_to_install" in w for w in nb.warnings)
