"""Each marshaller round-trips its types; unsavable values name variable, step and cell;
large values load copy-on-write and a value handed on unchanged is linked, not copied."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook import marshal, runtime


def roundtrip(obj, tmp_path):
    used = marshal.save(obj, tmp_path / "v")
    tag = json.loads((tmp_path / "v" / marshal.TAG_FILE).read_text())
    assert tag["marshaller"] == used.marshaller.name
    assert tag["bytes"] == used.bytes and tag["digest"] == used.digest
    return used.marshaller.name, marshal.load(tmp_path / "v")


def test_numpy(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    name, back = roundtrip(arr, tmp_path)
    assert name == "numpy" and back.dtype == np.float32
    np.testing.assert_array_equal(back, arr)
    assert (tmp_path / "v" / "data.npy").exists()


def test_numpy_object_array_falls_back_to_cloudpickle(tmp_path):
    arr = np.array([{"a": 1}, None], dtype=object)
    name, back = roundtrip(arr, tmp_path)
    assert name == "cloudpickle" and back[0] == {"a": 1}


def test_pandas_frame_and_series(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[10, 20])
    name, back = roundtrip(df, tmp_path / "df")
    assert name == "pandas"
    pd.testing.assert_frame_equal(back, df)
    s = pd.Series([1.5, 2.5], name="s")
    name, back = roundtrip(s, tmp_path / "s")
    assert name == "pandas"
    pd.testing.assert_series_equal(back, s)


def test_frames_keep_their_data_out_of_the_pickle_stream(tmp_path):
    """pandas blocks are pickle-5 out-of-band buffers: raw in the file, mapped on load."""
    df = pd.DataFrame({"x": np.arange(300_000, dtype="float64"), "s": ["a", "b"] * 150_000})
    saved = marshal.save(df, tmp_path / "v")
    assert saved.marshaller.name == "pandas" and saved.bytes >= df["x"].nbytes
    assert (tmp_path / "v" / "data.pkl5").exists()
    pd.testing.assert_frame_equal(marshal.load(tmp_path / "v"), df)


def test_digest_is_of_the_file_written(tmp_path):
    from kubelab.pipelines import digests

    for i, value in enumerate([np.arange(10.0), pd.DataFrame({"a": [1]}), {"k": 1}]):
        saved = marshal.save(value, tmp_path / str(i))
        data = tmp_path / str(i) / marshal.describe(tmp_path / str(i))["file"]
        assert saved.digest == digests.file_digest(data)
        assert saved.digest.startswith("xxh3-128:")


def test_modifying_a_mapped_array_leaves_the_producers_file_alone(tmp_path):
    arr = np.arange(1_000_000, dtype="float64")  # 8 MB: loaded as a private mapping
    marshal.save(arr, tmp_path / "made")
    before = (tmp_path / "made" / "data.npy").read_bytes()
    loaded = marshal.load(tmp_path / "made")
    assert type(loaded) is np.ndarray and loaded.flags.writeable
    loaded[:10] = -1.0
    loaded *= 2
    assert (tmp_path / "made" / "data.npy").read_bytes() == before
    np.testing.assert_array_equal(marshal.load(tmp_path / "made"), arr)
    frame = marshal.load(
        marshal.save(pd.DataFrame({"a": arr}), tmp_path / "df") and tmp_path / "df"
    )
    frame.loc[0, "a"] = 99.0
    assert marshal.load(tmp_path / "df").loc[0, "a"] == 0.0


@pytest.mark.parametrize(
    "value",
    [np.arange(500_000.0), pd.DataFrame({"a": np.arange(200_000)}), {"k": [1, 2, 3]}],
    ids=["ndarray", "DataFrame", "dict"],
)
def test_a_value_handed_on_unchanged_is_linked_not_written(tmp_path, value):
    marshal.save(value, tmp_path / "made")
    again = marshal.save(marshal.load(tmp_path / "made"), tmp_path / "passed",
                         previous=tmp_path / "made")  # fmt: skip
    made = tmp_path / "made" / marshal.describe(tmp_path / "made")["file"]
    passed = tmp_path / "passed" / marshal.describe(tmp_path / "passed")["file"]
    assert again.linked and os.path.samefile(made, passed)  # no second file on disk
    assert marshal.describe(tmp_path / "passed") == marshal.describe(tmp_path / "made")


def test_a_changed_value_gets_its_own_file_and_the_first_stays(tmp_path):
    marshal.save(np.zeros(1000), tmp_path / "made")
    changed = marshal.load(tmp_path / "made")
    changed[0] = 1.0
    again = marshal.save(changed, tmp_path / "passed", previous=tmp_path / "made")
    assert not again.linked
    assert not os.path.samefile(tmp_path / "made" / "data.npy", tmp_path / "passed" / "data.npy")
    assert marshal.load(tmp_path / "made")[0] == 0.0 and marshal.load(tmp_path / "passed")[0] == 1


def test_sklearn_estimator(tmp_path):
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    model = LogisticRegression().fit(X, y)
    name, back = roundtrip(model, tmp_path)
    assert name == "sklearn"
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_torch_tensor_and_module(tmp_path):
    t = torch.arange(6.0).reshape(2, 3)
    name, back = roundtrip(t, tmp_path / "t")
    assert name == "torch-tensor" and torch.equal(back, t)

    class Net(torch.nn.Module):  # defined locally: must travel by value
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(3, 1)

        def forward(self, x):
            return self.lin(x)

    net = Net()
    name, back = roundtrip(net, tmp_path / "m")
    assert name == "torch-module"
    assert torch.equal(back(t), net(t))


def test_cloudpickle_fallback_for_functions_and_classes(tmp_path):
    offset = 5

    class Box:
        def __init__(self, v):
            self.v = v

    def add(v):
        return v + offset

    name, back = roundtrip({"f": add, "box": Box(3)}, tmp_path)
    assert name == "cloudpickle"
    assert back["f"](1) == 6 and back["box"].v == 3


def test_registry_order_custom_marshaller_wins(tmp_path):
    custom = marshal.Marshaller(
        "upper-str",
        lambda obj: isinstance(obj, str),
        lambda obj, path: path.write_text(obj.upper()),
        lambda path: path.read_text(),
    )  # Marshaller(name, matches, save, load): the data file suffix is optional
    marshal.register(custom)
    try:
        name, back = roundtrip("hello", tmp_path)
        assert (name, back) == ("upper-str", "HELLO")
    finally:
        marshal.REGISTRY.remove(custom)
    assert marshal.marshaller_for("hello").name == "cloudpickle"


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: (i for i in range(3)),
        lambda tmp: open(tmp / "f.txt", "w"),  # noqa: SIM115
        lambda tmp: threading.Lock(),
    ],
    ids=["generator", "open-file", "lock"],
)
def test_unserializable_value_names_variable_step_and_cell(tmp_path, make):
    value = make(tmp_path)
    with pytest.raises(marshal.MarshalError):
        marshal.save(value, tmp_path / "raw")
    ns = {"thing": value}
    with pytest.raises(KubelabError) as info:
        runtime.save(ns, "thing", str(tmp_path / "v"), step="prep", cell=4)
    assert info.value.details == {"cell": 4, "step": "prep", "variable": "thing"}
    assert "'thing'" in info.value.message and "'prep'" in info.value.message
    if hasattr(value, "close"):
        value.close()


def test_missing_variable_is_reported(tmp_path):
    with pytest.raises(KubelabError) as info:
        runtime.save({}, "gone", str(tmp_path / "v"), step="s", cell=2)
    assert info.value.details["variable"] == "gone"
