"""Static analysis of one step's cells: which names it reads and which it leaves behind."""

from __future__ import annotations

import ast
import textwrap

from kubelab.pipelines.notebook.analysis import BUILTIN_NAMES, BlockNames, analyze_block


def names(*cells: str) -> BlockNames:
    return analyze_block([(i, ast.parse(textwrap.dedent(src))) for i, src in enumerate(cells)])


def test_plain_assignment_and_use_order():
    r = names("y = x + 1\nx = 2\nz = y")
    assert set(r.uses) == {"x"}  # x read before this block assigns it
    assert set(r.defs) == {"x", "y", "z"}


def test_use_cell_is_first_read_and_def_cell_is_last_write():
    r = names("a = 1", "b = c", "a = b")
    assert r.uses == {"c": 1}
    assert r.defs["a"] == 2 and r.defs["b"] == 1


def test_attribute_and_item_writes_mutate_the_root_variable():
    r = names("df.col = 1", "d['k'] = 2", "m.a.b[0] = 3")
    assert set(r.uses) == {"df", "d", "m"}
    assert set(r.defs) == {"df", "d", "m"}


def test_method_calls_mutate_except_read_only_ones():
    r = names("lst.append(1)\nmodel.fit(X, y)\ndf.head()\nprint(s.upper())")
    assert {"lst", "model"} <= set(r.defs)
    assert "df" not in r.defs and "s" not in r.defs
    assert {"lst", "model", "X", "y", "df", "s"} <= set(r.uses)


def test_call_result_used_is_not_a_mutation():
    r = names("pred = model.predict(X)")
    assert "model" not in r.defs and set(r.defs) == {"pred"}


def test_aliasing_reads_the_original():
    r = names("b = a\nb.append(1)")
    assert set(r.uses) == {"a"}
    assert {"b"} <= set(r.defs)


def test_augmented_assignment_reads_and_writes():
    r = names("total += 1")
    assert r.uses == {"total": 0} and "total" in r.defs
    r = names("total = 0\ntotal += 1")
    assert r.uses == {}


def test_function_defined_in_cell_reads_at_call_time():
    r = names("def f(a):\n    return a + helper + later\nlater = 1\nf(2)")
    assert set(r.uses) == {"helper"}  # `later` is bound in the step before any call
    assert {"f", "later"} <= set(r.defs)


def test_function_locals_parameters_and_nested_scopes_stay_local():
    src = """
    def outer(p, *args, k=default, **kw):
        q = p
        def inner():
            nonlocal q
            q = q + 1
            return q + free_inner
        return inner() + sum(args) + len(kw)
    """
    r = names(src)
    assert set(r.uses) - BUILTIN_NAMES == {"default", "free_inner"}
    assert {"sum", "len"} <= set(r.uses)  # builtins are reads too; the graph filters them
    assert set(r.defs) == {"outer"}


def test_global_statement_writes_module_variable():
    r = names("def bump():\n    global counter\n    counter = counter + 1\nbump()")
    assert "counter" in r.defs
    # Read inside the function, bound by it via `global`: not an input.
    assert "counter" not in r.uses


def test_class_defined_in_cell():
    src = """
    class Model(Base):
        scale = factor
        def predict(self, x):
            return x * self.scale * bias
    m = Model()
    """
    r = names(src)
    assert {"Base", "factor", "bias"} <= set(r.uses)
    assert {"Model", "m"} <= set(r.defs)
    assert "x" not in r.uses and "self" not in r.uses


def test_loops_bind_targets_and_read_iterables():
    r = names("for i, (a, b) in enumerate(pairs):\n    acc = acc + a\nelse:\n    done = True")
    assert set(r.uses) - BUILTIN_NAMES == {"pairs", "acc"}
    assert {"i", "a", "b", "acc", "done"} <= set(r.defs)


def test_while_reads_before_write():
    r = names("while n > 0:\n    n -= 1")
    assert set(r.uses) == {"n"}


def test_comprehension_targets_are_local():
    r = names(
        "sq = [x * k for x in xs if x > lo]\nd = {a: b for a, b in items}\ng = (z for z in w)"
    )
    assert set(r.uses) == {"k", "xs", "lo", "items", "w"}
    assert "x" not in r.defs and "a" not in r.defs and "z" not in r.defs


def test_walrus_in_comprehension_binds_outside():
    r = names("ys = [last := v for v in vals]\nprint(last)")
    assert "last" in r.defs and "last" not in r.uses


def test_lambda_body_is_deferred():
    r = names("f = lambda v: v * scale\nscale = 2")
    assert set(r.uses) == set()
    r = names("f = lambda v: v * scale")
    assert set(r.uses) == {"scale"}


def test_del_removes_the_definition():
    r = names("tmp = 1\nkeep = tmp\ndel tmp")
    assert "tmp" in r.deleted and "tmp" not in r.defs
    assert r.uses == {}
    r = names("del upstream")
    assert r.uses == {"upstream": 0} and "upstream" in r.deleted


def test_del_item_mutates():
    r = names("del d['k']")
    assert "d" in r.defs and "d" in r.uses


def test_imports_inside_step_are_tracked_as_imports():
    r = names("import os.path\nimport numpy as np\nfrom json import dumps as d\nx = np.zeros(1)")
    assert r.imported["os"][1] == "import os.path"
    assert r.imported["np"][1] == "import numpy as np"
    assert r.imported["d"][1] == "from json import dumps as d"
    assert "np" not in r.defs and "np" not in r.uses


def test_mutating_an_imported_module_is_not_a_definition():
    r = names("import numpy as np\nnp.random.seed(0)")
    assert "np" not in r.defs


def test_star_import_is_flagged():
    assert names("from math import *").star_import


def test_try_with_match_bind_names():
    src = """
    try:
        f = open(p)
    except OSError as err:
        msg = str(err)
    with ctx() as (h1, h2):
        pass
    match cmd:
        case {"go": where, **rest}:
            pass
        case [first, *others]:
            pass
        case Point(x=px) as pt:
            pass
    """
    r = names(src)
    assert {"p", "ctx", "cmd", "Point"} <= set(r.uses)
    assert {"f", "err", "msg", "h1", "h2", "where", "rest", "first", "others", "px", "pt"} <= set(
        r.defs
    )
    assert "OSError" in r.uses  # a builtin; the step graph filters builtins later


def test_annotations_and_decorators_are_read_at_definition():
    r = names("@deco\ndef f(a: T = dflt) -> R:\n    pass\nv: Ann = 3\nw: OnlyAnn")
    assert {"deco", "T", "dflt", "R", "Ann", "OnlyAnn"} <= set(r.uses)
    assert "w" not in r.defs and "v" in r.defs


def test_bare_call_on_last_line_is_display_unless_known_mutator():
    r = names("df.sort_values('a')")
    assert "df" not in r.defs  # shown, not changed
    r = names("df.sort_values('a')\nx = 1")
    assert "df" in r.defs  # not shown: called for its effect
    r = names("model.fit(X, y)")
    assert "model" in r.defs
    r = names("df.drop(columns=['a'], inplace=True)")
    assert "df" in r.defs


def test_last_line_rule_is_per_cell():
    r = analyze_block(
        [(0, ast.parse("df.rename(columns=str)")), (1, ast.parse("lst.append(1)\nprint(lst)"))]
    )
    assert "df" not in r.defs and r.defs["lst"] == 1


def _with_context(*cells: str, prelude: str = "") -> BlockNames:
    from kubelab.pipelines.notebook.analysis import Context, function_effects

    trees = [ast.parse(textwrap.dedent(src)) for src in (prelude, *cells)]
    context = Context(modules={}, fixed=frozenset())
    for node in trees[0].body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                module = getattr(node, "module", None)
                context.modules[alias.asname or alias.name] = (
                    f"{module}.{alias.name}" if module else alias.name
                )
    context.effects = function_effects(trees, context)
    return analyze_block(list(enumerate(trees[1:])), context)


def test_calls_change_what_their_callee_changes():
    prelude = """
    import random
    import numpy as np
    import helpers
    from torch import nn
    def train(model, n):
        for i in range(n):
            model.append(i)
    def score(model, data):
        return sum(model) + len(data)
    def fit(clf, X):
        train(clf, 1)
    """
    r = _with_context(
        "random.shuffle(deck)\nnp.mean(values)\ntrain(m1, 2)\ns = score(m2, rows)\n"
        "fit(m3, X)\nhelpers.tweak(obj, k=kw)\nnn.init.normal_(w)\nlen(sized)",
        prelude=prelude,
    )
    assert {"deck", "m1", "m3", "obj", "kw", "w"} <= r.mutated
    assert not {"values", "m2", "rows", "X", "sized"} & r.mutated
    assert {"deck", "m1", "m3", "obj", "w"} <= set(r.defs)


def test_changes_through_aliases_reach_the_original():
    r = names(
        "data = [train_df, test_df]\nfor dataset in data:\n    dataset['x'] = 1",
        "for k, v in table.items():\n    v.append(k)",
        "first = frames[0]\nfirst.loc[0, 'a'] = 1",
    )
    assert {"train_df", "test_df", "table", "frames"} <= r.mutated
    assert {"train_df", "test_df"} <= set(r.uses)


def test_functions_that_change_globals_and_plain_classes():
    prelude = """
    from dataclasses import dataclass
    history = []
    def record(v):
        history.append(v)
    @dataclass
    class Config:
        items: list
    """
    r = _with_context("record(1)\ncfg = Config(values)", prelude=prelude)
    assert "history" in r.mutated and "values" not in r.mutated
