"""Issue 8, problem 1: a value changed by a call, or through an alias, reaches later
steps as the kernel has it (Kale's rule: the nearest upstream reader or writer hands
it on)."""

from __future__ import annotations

import os
from pathlib import Path

from same_as_kernel import assert_same_as_kernel

from kubelab.pipelines.notebook import compile_notebook


def _step(nb, name):
    return next(s for s in nb.steps if s.name == name)


def test_function_from_functions_cell_that_appends_to_its_argument(make_notebook, tmp_path):
    path = make_notebook(
        ("def train(model, n):\n    for i in range(n):\n        model.append(i)", "functions"),
        ("model = []", "step:create"),
        ("train(model, 3)", "step:fit"),
        ("size = len(model)\ntotal = sum(model)", "step:use"),
        ("size\ntotal", "pipeline-metrics"),
    )
    nb = compile_notebook(path)
    assert _step(nb, "use").producers == {"model": "fit"}
    assert _step(nb, "use").depends_on == ["fit"]
    assert_same_as_kernel(path, tmp_path / "out", ["size", "total"])


def test_random_shuffle_changes_its_argument(make_notebook, tmp_path):
    path = make_notebook(
        ("import random", "imports"),
        ("data = list(range(20))", "step:make"),
        ("random.seed(3)\nrandom.shuffle(data)", "step:shuffle"),
        ("first = data[0]\nlast = data[-1]", "step:use"),
        ("first\nlast", "pipeline-metrics"),
    )
    nb = compile_notebook(path)
    assert _step(nb, "use").producers == {"data": "shuffle"}
    assert_same_as_kernel(path, tmp_path / "out", ["first", "last"])


def test_helper_that_fits_the_model_it_is_given(make_notebook, tmp_path):
    path = make_notebook(
        ("from sklearn.linear_model import LogisticRegression", "imports"),
        ("def fit(clf, X, y):\n    clf.fit(X, y)\n\n"
         "def evaluate(clf, X, y):\n    return float(clf.score(X, y))", "functions"),
        ("X = [[0.0], [1.0], [2.0], [3.0]]\ny = [0, 0, 1, 1]\nclf = LogisticRegression()",
         "step:load"),
        ("fit(clf, X, y)", "step:train"),
        ("score = evaluate(clf, X, y)\ncoef = float(clf.coef_[0][0])", "step:evaluate"),
        ("score\ncoef", "pipeline-metrics"),
    )  # fmt: skip
    nb = compile_notebook(path)
    assert _step(nb, "evaluate").producers["clf"] == "train"
    # `evaluate` changes nothing: the scoring step is not a producer of `clf`.
    assert "clf" not in _step(nb, "evaluate").outputs
    assert_same_as_kernel(path, tmp_path / "out", ["score", "coef"])


def test_frames_changed_through_a_list_that_holds_them(make_notebook, tmp_path):
    """Kale's Titanic example does this: `data = [train_df, test_df]`, then a loop sets
    a column on each; the next step must get the changed frames."""
    path = make_notebook(
        ("import pandas as pd", "imports"),
        ("train_df = pd.DataFrame({'a': [1.0, None, 3.0]})\n"
         "test_df = pd.DataFrame({'a': [None, 5.0]})", "step:loaddata"),
        ("data = [train_df, test_df]\nfor dataset in data:\n"
         "    dataset['a'] = dataset['a'].fillna(0)", "step:preprocess", "prev:loaddata"),
        ("train_sum = int(train_df['a'].astype(int).sum())\n"
         "test_sum = int(test_df['a'].astype(int).sum())", "step:features", "prev:preprocess"),
        ("train_sum\ntest_sum", "pipeline-metrics"),
    )  # fmt: skip
    nb = compile_notebook(path)
    assert _step(nb, "features").producers == {"train_df": "preprocess", "test_df": "preprocess"}
    assert_same_as_kernel(path, tmp_path / "out", ["train_sum", "test_sum"])


def test_nearest_reader_hands_the_value_on_without_a_second_copy(make_notebook, tmp_path):
    """A step between the writer and the reader that also reads the value hands it on
    (so a change the analysis cannot see still arrives); unchanged, it is not copied."""
    path = make_notebook(
        ("import numpy as np", "imports"),
        ("values = np.arange(100_000, dtype='float64')", "step:make"),
        ("mean = float(values.mean())", "step:stats"),
        ("spread = float(values.max() - mean)", "step:use"),
        ("spread", "pipeline-metrics"),
    )
    nb = compile_notebook(path)
    assert _step(nb, "use").producers == {"values": "stats", "mean": "stats"}
    assert _step(nb, "stats").outputs == ["values", "mean"]
    result = assert_same_as_kernel(path, tmp_path / "out", ["spread"])
    steps = {s["display_name"]: s for s in result.run()["steps"]}
    made = Path(steps["make"]["outputs"]["values"]["uri"])
    passed = Path(steps["stats"]["outputs"]["values_out"]["uri"])
    [made_file] = [f for f in made.iterdir() if f.name.startswith("data")]
    [passed_file] = [f for f in passed.iterdir() if f.name.startswith("data")]
    assert os.path.samefile(made_file, passed_file)  # one file on disk, two artifacts


def test_unseen_change_through_unknown_code_reaches_later_steps(make_notebook, tmp_path):
    """A function from a module beside the notebook may change what it is given."""
    path = make_notebook(
        ("from helpers import grow", "imports"),
        ("items = [1]", "step:make"),
        ("grow(items)", "step:grow"),
        ("count = len(items)", "step:count"),
        ("count", "pipeline-metrics"),
    )
    (path.parent / "helpers.py").write_text("def grow(xs):\n    xs.extend([2, 3])\n")
    nb = compile_notebook(path)
    assert _step(nb, "count").producers == {"items": "grow"}
    assert_same_as_kernel(path, tmp_path / "out", ["count"])


def test_parallel_readers_stay_parallel(make_notebook):
    cells = [
        ("from sklearn.tree import DecisionTreeClassifier\n"
         "from sklearn.naive_bayes import GaussianNB", "imports"),
        ("X = [[0], [1]]\ny = [0, 1]", "step:load"),
        ("a = DecisionTreeClassifier().fit(X, y)\nsa = a.score(X, y)", "step:tree"),
        ("b = GaussianNB()\nb.fit(X, y)\nsb = b.score(X, y)", "step:bayes"),
        ("best = max(sa, sb)", "step:results"),
    ]  # fmt: skip
    nb = compile_notebook(make_notebook(*cells))
    assert _step(nb, "tree").depends_on == ["load"] and _step(nb, "bayes").depends_on == ["load"]
    assert _step(nb, "results").depends_on == ["tree", "bayes"]


def test_functions_cell_value_changed_by_a_step_reaches_later_steps(make_notebook, tmp_path):
    path = make_notebook(
        ("history = []\ndef record(v):\n    history.append(v)", "functions"),
        ("record(5)\nrecord(7)", "step:a"),
        ("seen = len(history)\nlast = history[-1]", "step:b"),
        ("seen\nlast", "pipeline-metrics"),
    )
    nb = compile_notebook(path)
    assert _step(nb, "b").producers == {"history": "a"}
    assert_same_as_kernel(path, tmp_path / "out", ["seen", "last"])
