"""Each model format loaded as the server loads it, and called as a request calls it.
scikit-learn and torch always; XGBoost and LightGBM when they are installed
(`pip install kubelab[serving]`)."""

from __future__ import annotations

import asyncio
import inspect
import json
import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import tritonclient.http as triton

from kubelab.workloads.serving.formats import ModelLoadError, make_model, resolve_model
from kubelab.workloads.serving.protocol import InvalidInput, decode_infer_request

from .conftest import IRIS_ROWS, train_iris

X = np.array(IRIS_ROWS, dtype=np.float32)


def v2(model: Any, *inputs: tuple[str, np.ndarray], **parameters: Any) -> dict[str, np.ndarray]:
    body = {
        "parameters": parameters,
        "inputs": [
            {"name": n, "shape": list(a.shape), "datatype": "FP32", "data": a.tolist()}
            for n, a in inputs
        ],
    }
    request = decode_infer_request(model.name, json.dumps(body).encode(), {})
    return dict(done(model.infer(request)))


def done(result: Any) -> Any:
    """A model call's value: built-in formats answer at once, async custom code later."""
    return asyncio.run(result) if inspect.isawaitable(result) else result


def loaded(path: Path, fmt: str | None = None, **options: Any) -> Any:
    model = make_model("m", path, fmt, options)
    model.load()
    assert model.ready
    return model


def iris_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


# -- scikit-learn -------------------------------------------------------------------------


def test_sklearn_predict_and_predict_proba(iris_file: Path) -> None:
    clf = train_iris()
    model = loaded(iris_file)
    assert v2(model, ("input-0", X))["output-0"].tolist() == clf.predict(X).tolist()
    assert done(model.predict_v1({"instances": IRIS_ROWS})).tolist() == [0, 1]
    proba = loaded(iris_file, predict_proba=True)
    out = v2(proba, ("input-0", X))["output-0"]
    assert out.shape == (2, 3) and np.allclose(out, clf.predict_proba(X))
    assert proba.metadata()["outputs"] == [
        {"name": "output-0", "datatype": "FP64", "shape": [-1, 3]}
    ]


def test_sklearn_columns_as_inputs(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0]})
    reg = LinearRegression().fit(frame, [1.0, 3.0, 3.0])
    joblib.dump(reg, tmp_path / "reg.pkl")
    model = loaded(tmp_path)
    out = v2(model, ("a", np.array([1.0, 2.0])), ("b", np.array([0.0, 1.0])))["output-0"]
    assert np.allclose(out, reg.predict(pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0]})))
    rows = done(model.predict_v1({"instances": [{"a": 1.0, "b": 0.0}]}))
    assert np.allclose(rows, [1.0])


def test_a_notebook_step_output_names_its_format(tmp_path: Path) -> None:
    from kubelab.pipelines.notebook import marshal

    marshal.save(train_iris(), tmp_path / "model")
    file, fmt = resolve_model(tmp_path / "model")
    assert (file.name, fmt) == ("data.pkl5", "sklearn")  # pickle 5, buffers out of band
    assert v2(loaded(tmp_path / "model"), ("x", X))["output-0"].tolist() == [0, 1]
    marshal.save(np.arange(3), tmp_path / "array")
    with pytest.raises(ModelLoadError, match=r"holds a numpy.ndarray .* not a model kubelab"):
        make_model("m", tmp_path / "array", None, {})
    marshal.save([1, 2, 3], tmp_path / "numbers")  # pickled: served as custom, if it could
    with pytest.raises(ModelLoadError, match=r"list has no predict\(\) method"):
        make_model("m", tmp_path / "numbers", None, {}).load()


def test_files_found_by_extension_or_first_bytes(tmp_path: Path, iris_file: Path) -> None:
    plain = tmp_path / "artifact"  # a KFP Model artifact: no extension
    plain.write_bytes(iris_file.read_bytes())
    assert resolve_model(plain) == (plain, "sklearn")
    assert v2(loaded(plain), ("x", X))["output-0"].tolist() == [0, 1]
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model(tmp_path / "missing.joblib")
    (tmp_path / "two").mkdir()
    for name in ("a.joblib", "b.pkl"):
        (tmp_path / "two" / name).write_bytes(iris_file.read_bytes())
    with pytest.raises(ModelLoadError, match="more than one model file"):
        resolve_model(tmp_path / "two")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no model file"):
        resolve_model(tmp_path / "empty")
    (tmp_path / "notes.weird").write_text("hello")
    with pytest.raises(ModelLoadError, match="cannot tell the format"):
        resolve_model(tmp_path / "notes.weird")


def test_a_file_that_is_not_a_model_fails_to_load(tmp_path: Path) -> None:
    broken = tmp_path / "broken.joblib"
    broken.write_bytes(b"\x80\x04 this is not a pickle")
    with pytest.raises(Exception):  # noqa: B017 - whatever joblib raises is the load error
        make_model("m", broken, None, {}).load()
    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    with pytest.raises(ModelLoadError, match="has no predict"):
        make_model("m", tmp_path / "dict.joblib", None, {}).load()


# -- XGBoost and LightGBM (optional extra) ----------------------------------------------------


def test_xgboost_json_and_ubj(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = iris_data()
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(x, y), 5)
    expected = booster.predict(xgb.DMatrix(X))
    for name in ("model.json", "model.ubj"):
        booster.save_model(str(tmp_path / name))
        model = loaded(tmp_path / name)
        assert model.format == "xgboost"
        assert np.allclose(v2(model, ("input-0", X))["output-0"], expected)
        assert model.metadata()["inputs"][0]["shape"] == [-1, 4]


def test_lightgbm_text_model(tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = iris_data()
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(x, y), 5
    )
    booster.save_model(str(tmp_path / "model.txt"))
    model = loaded(tmp_path / "model.txt")
    assert model.format == "lightgbm"
    assert np.allclose(v2(model, ("input-0", X))["output-0"], booster.predict(X))
    (tmp_path / "model.txt").rename(tmp_path / "model.bst")  # .bst: told apart by its bytes
    assert resolve_model(tmp_path / "model.bst")[1] == "lightgbm"


# -- PyTorch ------------------------------------------------------------------------------------


class Net:
    @staticmethod
    def make() -> Any:
        import torch

        class TwoLayer(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.linear = torch.nn.Linear(4, 3)

            def forward(self, features: torch.Tensor) -> torch.Tensor:
                return torch.softmax(self.linear(features), dim=-1)

        torch.manual_seed(0)
        return TwoLayer().eval()


def test_torchscript(tmp_path: Path) -> None:
    import torch

    net = Net.make()
    scripted = torch.jit.script(net)
    scripted.save(str(tmp_path / "model.pt"))
    model = loaded(tmp_path / "model.pt")
    assert model.platform == "pytorch_torchscript"
    assert model.metadata()["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1]}]
    expected = net(torch.from_numpy(X)).detach().numpy()
    assert np.allclose(v2(model, ("features", X))["output-0"], expected, atol=1e-6)
    assert np.allclose(done(model.predict_v1({"instances": IRIS_ROWS})), expected, atol=1e-6)
    with pytest.raises(InvalidInput, match="cannot take this input"):
        v2(model, ("features", np.zeros((2, 3), dtype=np.float32)))


def test_torch_export_program(tmp_path: Path) -> None:
    import torch

    net = Net.make()
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        net, (torch.zeros(2, 4),), dynamic_shapes={"features": {0: batch}}
    )
    torch.export.save(program, str(tmp_path / "net.pt2"))
    model = loaded(tmp_path / "net.pt2")
    assert model.platform == "pytorch_export"
    expected = net(torch.from_numpy(X)).detach().numpy()
    assert np.allclose(v2(model, ("features", X))["output-0"], expected, atol=1e-6)


def test_a_whole_torch_module_saved_by_a_notebook_step(tmp_path: Path) -> None:
    import torch

    from kubelab.pipelines.notebook import marshal

    net = Net.make()
    marshal.save(net, tmp_path / "net")
    model = loaded(tmp_path / "net")
    assert (model.format, model.platform) == ("pytorch", "pytorch")
    expected = net(torch.from_numpy(X)).detach().numpy()
    assert np.allclose(v2(model, ("x", X))["output-0"], expected, atol=1e-6)


# -- custom classes -----------------------------------------------------------------------------

CUSTOM = '''
import numpy as np

class Doubler:
    """Shaped like a kserve.Model: name, load() sets ready, predict(payload, headers)."""

    def __init__(self, name):
        self.name = name
        self.ready = False

    def load(self):
        self.factor = 2.0
        self.ready = True

    def preprocess(self, payload, headers=None):
        if isinstance(payload, dict):
            return np.asarray(payload["instances"], dtype=float)
        return payload.inputs[0].as_numpy()

    async def predict(self, x, headers=None):
        if x.size == 0:
            raise ValueError("empty input")
        return {"doubled": x * self.factor, "total": np.array([x.sum()])}

    def postprocess(self, result, headers=None):
        return result

class Helper:
    pass
'''


def test_custom_class_from_a_python_file(tmp_path: Path) -> None:
    (tmp_path / "doubler.py").write_text(CUSTOM)
    model = loaded(tmp_path / "doubler.py")
    out = v2(model, ("x", X))
    assert np.allclose(out["doubled"], X * 2) and np.isclose(out["total"][0], X.sum())
    v1 = done(model.predict_v1({"instances": [[1, 2]]}))
    assert v1["doubled"].tolist() == [[2.0, 4.0]]
    with pytest.raises(InvalidInput, match="empty input"):
        v2(model, ("x", np.zeros((0, 4), dtype=np.float32)))


def test_custom_class_choice_and_errors(tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(CUSTOM + "\nclass Other(Doubler):\n    pass\n")
    with pytest.raises(ModelLoadError, match="exactly one class"):
        loaded(tmp_path / "two.py")
    assert type(loaded(tmp_path / "two.py", class_name="Other").model).__name__ == "Other"
    (tmp_path / "lazy.py").write_text(
        "class Lazy:\n    ready = False\n    def load(self):\n        pass\n"
        "    def predict(self, x):\n        return x\n"
    )
    with pytest.raises(ModelLoadError, match=r"without setting self.ready = True"):
        loaded(tmp_path / "lazy.py")


class Scaler:
    """A plain object with predict(), pickled by serve() (cloudpickle) as custom."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def predict(self, payload: Any) -> Any:
        return payload.inputs[0].as_numpy() * self.scale


def test_pickled_object_with_predict(tmp_path: Path) -> None:
    import cloudpickle

    with (tmp_path / "scaler.pkl").open("wb") as file:
        cloudpickle.dump(Scaler(3.0), file)
    model = loaded(tmp_path / "scaler.pkl", "custom")
    assert np.allclose(v2(model, ("x", X))["output-0"], X * 3)
    assert pickle.loads((tmp_path / "scaler.pkl").read_bytes()).scale == 3.0


# -- over HTTP -----------------------------------------------------------------------------------


def test_torch_and_custom_models_over_http(servers: Any, tmp_path: Path) -> None:
    import torch

    net = Net.make()
    torch.jit.script(net).save(str(tmp_path / "net.pt"))
    (tmp_path / "doubler.py").write_text(CUSTOM)
    torch_job = servers.start("net", tmp_path / "net.pt")
    custom_job = servers.start("doubler", f"{tmp_path / 'doubler.py'}:Doubler")
    expected = net(torch.from_numpy(X)).detach().numpy()

    client = triton.InferenceServerClient(servers.url(torch_job).removeprefix("http://"))
    tensor = triton.InferInput("features", [2, 4], "FP32")
    tensor.set_data_from_numpy(X)
    assert np.allclose(client.infer("net", [tensor]).as_numpy("output-0"), expected, atol=1e-6)

    client = triton.InferenceServerClient(servers.url(custom_job).removeprefix("http://"))
    tensor = triton.InferInput("x", [2, 4], "FP32")
    tensor.set_data_from_numpy(X)
    result = client.infer("doubler", [tensor])
    assert np.allclose(result.as_numpy("doubled"), X * 2)
