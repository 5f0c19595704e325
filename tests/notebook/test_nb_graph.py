"""Tags -> steps, data edges and errors that name the cell and step."""

from __future__ import annotations

import pytest
from nbfactory import build_notebook

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook import compile_notebook


def compile_cells(*cells):
    return compile_notebook(build_notebook(*cells), name="t")


def step(nb, name):
    return next(s for s in nb.steps if s.name == name)


def error_of(*cells) -> KubelabError:
    with pytest.raises(KubelabError) as info:
        compile_cells(*cells)
    return info.value


def test_parallel_steps_and_data_edges():
    nb = compile_cells(
        ("import math", "imports"),
        ("scale = 2.0\nname = 'x'\nflags = [1, 2]\nopts = {'a': 1}\ndebug = False",
         "pipeline-parameters"),
        ("def double(v):\n    return v * 2", "functions"),
        "## markdown is ignored",
        ("data = [1, 2, 3]", "step:load"),
        ("a = sum(data) * scale", "step:left"),
        ("b = double(max(data))", "step:right"),
        ("total = math.floor(a + b)", "step:join"),
    )  # fmt: skip
    assert [s.name for s in nb.steps] == ["load", "left", "right", "join"]
    assert step(nb, "load").cells == [4]  # index among all cells, markdown included
    assert step(nb, "left").depends_on == ["load"] and step(nb, "right").depends_on == ["load"]
    assert step(nb, "join").depends_on == ["left", "right"]
    assert step(nb, "load").outputs == ["data"]
    assert step(nb, "left").inputs == ["data"] and step(nb, "left").parameters == ["scale"]
    assert nb.parameters == {
        "scale": {"type": "float", "default": 2.0},
        "name": {"type": "str", "default": "x"},
        "flags": {"type": "list", "default": [1, 2]},
        "opts": {"type": "dict", "default": {"a": 1}},
        "debug": {"type": "bool", "default": False},
    }
    edges = {(e["from"], e["to"]): e["variables"] for e in nb.to_json()["edges"]}
    assert edges == {
        ("load", "left"): ["data"],
        ("load", "right"): ["data"],
        ("left", "join"): ["a"],
        ("right", "join"): ["b"],
    }
    assert nb.task_metadata()["join"] == {"cells": [7], "step": "join"}


def test_untagged_cells_join_previous_and_block_alias_and_skip():
    nb = compile_cells(
        ("x = 1", "block:first"),
        ("y = x + 1",),
        ("print(undefined_but_skipped)", "skip"),
        ("w = y * 2",),  # after a skip cell: still step "first", as in Kale
        ("z = y", "step:second", "prev:first"),
    )
    assert step(nb, "first").cells == [0, 1, 3]
    assert step(nb, "second").cells == [4]
    assert step(nb, "second").inputs == ["y"]


def test_prev_without_data_uses_after():
    nb = compile_cells(("open('f', 'w').write('1')", "step:a"), ("print(1)", "step:b", "prev:a"))
    assert step(nb, "b").depends_on == ["a"] and step(nb, "b").inputs == []
    assert "task_b.after(task_a)" in nb.python_source


def test_last_writer_is_the_producer_and_mutation_chains():
    nb = compile_cells(
        ("model = []", "step:create"),
        ("model.append(1)", "step:fit"),
        ("print(model)", "step:use"),
    )
    assert step(nb, "fit").inputs == ["model"] and step(nb, "fit").outputs == ["model"]
    assert step(nb, "use").depends_on == ["fit"]
    # Input and output of the same name get distinct argument names in the component.
    assert "model_out: dsl.Output[dsl.Artifact]" in nb.python_source


def test_function_and_class_defined_in_step_become_variables():
    nb = compile_cells(
        ("def f(v):\n    return v + 1\nclass K:\n    pass", "step:define"),
        ("r = f(1)\nk = K()", "step:use"),
    )
    assert sorted(step(nb, "use").inputs) == ["K", "f"]


def test_import_in_step_is_reimported_not_passed():
    nb = compile_cells(("import json as j", "step:a"), ("s = j.dumps(1)", "step:b"))
    assert step(nb, "b").inputs == [] and step(nb, "b").depends_on == []
    assert "'import json as j'" in nb.python_source


def test_limits_image_and_accelerators():
    nb = compile_cells(
        ("x = 1", "step:train", "limit:nvidia.com/gpu:2", "limit:cpu:4", "limit:memory:8Gi",
         "image:pytorch/pytorch:2.3.0"),
    )  # fmt: skip
    s = step(nb, "train")
    assert s.limits == {"nvidia.com/gpu": "2", "cpu": "4", "memory": "8Gi"}
    assert s.image == "pytorch/pytorch:2.3.0"
    src = nb.python_source
    assert "base_image='pytorch/pytorch:2.3.0'" in src
    assert "task_train.set_accelerator_type('nvidia.com/gpu')" in src
    assert "task_train.set_accelerator_limit(2)" in src
    assert "task_train.set_cpu_limit('4')" in src and "set_memory_limit('8Gi')" in src


def test_metrics_step_collects_named_values():
    nb = compile_cells(
        ("acc = 0.9\nloss = 0.1", "step:train"),
        ("acc\nprint(loss)\nratio = acc / loss", "pipeline-metrics"),
    )
    assert nb.metrics == ["acc", "loss", "ratio"]
    metrics = step(nb, "pipeline-metrics")
    assert metrics.depends_on == ["train"] and sorted(metrics.inputs) == ["acc", "loss"]
    assert "dsl.Output[dsl.Metrics]" in nb.python_source


# -- errors: each names the cell (index, 0-based; "cell N" in messages counts from 1)
# and the step


def test_undefined_name():
    err = error_of(("a = 1", "step:one"), "md", ("b = a + missing", "step:two"))
    assert err.details["cell"] == 2 and err.details["step"] == "two"
    assert "missing" in err.message and "cell 3" in err.message


def test_name_defined_only_later_says_so():
    err = error_of(("b = later", "step:one"), ("later = 1", "step:two"))
    assert err.details == {"cell": 0, "step": "one", "variable": "later"}
    assert "defined later" in err.message and "two" in err.message


def test_same_variable_from_two_parallel_steps():
    err = error_of(
        ("base = 1", "step:load"),
        ("model = base + 1\nscore_a = 1", "step:train_a"),
        ("model = base + 2", "step:train_b"),
        ("print(model, score_a)", "step:evaluate"),
    )
    assert err.details["cell"] == 3 and err.details["step"] == "evaluate"
    assert set(err.details["steps"]) == {"train_a", "train_b"}
    assert "train_a" in err.message and "train_b" in err.message
    assert "cell 2" in err.message and "cell 3" in err.message


def test_same_variable_in_ordered_steps_is_fine():
    nb = compile_cells(
        ("model = 1", "step:a"),
        ("model = 2\nother = 1", "step:b", "prev:a"),
        ("print(model, other)", "step:c"),
    )
    assert step(nb, "c").producers == {"model": "b", "other": "b"}


def test_prev_unknown_step():
    err = error_of(("x = 1", "step:a"), ("y = 2", "step:b", "prev:nope"))
    assert err.details == {"cell": 1, "step": "b"}
    assert "prev:nope" in err.message


def test_cycle():
    err = error_of(("x = 1", "step:a", "prev:b"), ("y = 2", "step:b", "prev:a"))
    assert err.details["step"] == "a" and err.details["cell"] == 0
    assert "cycle" in err.message


def test_syntax_error_has_cell_step_and_line():
    err = error_of(("x = 1", "step:a"), ("y = 2\nif y\n  pass", "step:b"))
    assert err.details == {"cell": 1, "step": "b", "line": 2}


def test_deleted_variable_used_later():
    err = error_of(("x = 1", "step:a"), ("del x", "step:b", "prev:a"), ("print(x)", "step:c"))
    assert err.details["cell"] == 2 and err.details["step"] == "c"
    assert "deleted" in err.message and "cell 2" in err.message


def test_parameters_cell_only_assignments():
    err = error_of(("x = 1\nprint(x)", "pipeline-parameters"), ("y = x", "step:a"))
    assert err.details["cell"] == 0 and err.details["line"] == 2
    err = error_of(("x = compute()", "pipeline-parameters"), ("y = x", "step:a"))
    assert err.details["cell"] == 0 and "literal" in err.message


def test_untagged_first_cell():
    err = error_of(("x = 1",), ("y = 2", "step:a"))
    assert err.details["cell"] == 0


def test_bad_limit_and_reserved_step_names():
    assert error_of(("x = 1", "step:a", "limit:cpu:lots")).details["cell"] == 0
    assert error_of(("x = 1", "step:dsl")).details["step"] == "dsl"
    assert error_of(("x = 1", "step:9lives")).details["cell"] == 0


def test_no_steps():
    assert "no steps" in error_of(("import os", "imports")).message


def test_parameter_named_like_a_step():
    err = error_of(("train = 1", "pipeline-parameters"), ("x = train", "step:train"))
    assert err.details == {"cell": 0, "step": None}


def test_step_names_equal_up_to_case_or_dash():
    err = error_of(("x = 1", "step:Load"), ("y = 1", "step:load"))
    assert err.details["step"] == "load" and err.details["cell"] == 1
    err = error_of(("x = 1", "step:load-data"), ("y = 1", "step:load_data"))
    assert err.details["step"] == "load_data"


def test_parameters_read_by_functions_cells_reach_every_step():
    nb = compile_cells(
        ("rate = 0.5", "pipeline-parameters"),
        ("def scaled(v):\n    return v * rate", "functions"),
        ("x = scaled(2)", "step:a"),
        ("y = x + 1", "step:b"),
    )
    assert step(nb, "a").parameters == ["rate"] and step(nb, "b").parameters == ["rate"]


def test_kernel_only_names_are_reported():
    err = error_of(("get_ipython().system('ls')", "step:a"))
    assert err.details["cell"] == 0 and "get_ipython" in err.message


def test_bad_cache_tag():
    err = error_of(("x = 1", "step:a"), ("y = 1", "step:b", "cache:sometimes"))
    assert err.details == {"cell": 1, "step": "b"}


def test_changing_a_parameter_in_a_step_is_a_warning():
    nb = compile_cells(("n = 1", "pipeline-parameters"), ("n += 1\nm = n", "step:a"),
                       ("k = n + m", "step:b"))  # fmt: skip
    assert nb.steps[1].parameters == ["n"] and nb.steps[1].inputs == ["m"]
    assert any("changes pipeline parameter 'n'" in w and "cell 2" in w for w in nb.warnings)
