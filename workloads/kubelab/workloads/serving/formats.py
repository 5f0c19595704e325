"""Model formats the server loads, each as the runtime KServe uses for it.

| format   | files                                   | as KServe's runtime        |
|----------|-----------------------------------------|----------------------------|
| sklearn  | `.joblib`, `.pkl`, `.pickle`            | `sklearnserver` (`PREDICT_PROBA`) |
| xgboost  | `.json`, `.ubj`, `.bst`                 | `xgbserver`                |
| lightgbm | `.txt`, `.bst`, `.model`                | `lgbserver`                |
| pytorch  | TorchScript (`.pt`, `.pth`), `torch.export` (`.pt2`), or a whole `nn.Module` saved with `torch.save` | Triton's `pytorch_libtorch` |
| custom   | a `.py` file with a class that has `predict()` (and `load()`), or a pickled object | a `kserve.Model` subclass |

A directory is served as KServe serves one: it must hold exactly one model file. A
notebook step's output directory (`kubelab-marshal.json` + `data.*`) names its own
format. Files without a known extension are recognised by their first bytes.

Heavy libraries (sklearn, torch, ...) are imported by `load()`, in the server process,
never by the code that only lists or validates.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .modelfiles import FORMATS, ModelLoadError, resolve_model
from .protocol import InferRequest, InvalidInput, datatype_of

# Exceptions that a model raises for input it cannot take (wrong width, wrong type).
BAD_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError)


# -- models ------------------------------------------------------------------------------


class ServedModel:
    """A loaded model behind the protocol: `infer` for v2, `predict_v1` for v1.

    Both return the result, or an awaitable of it when the model's own code is async
    (custom classes); the server awaits only those.
    """

    format: ClassVar[str]
    platform: ClassVar[str]

    def __init__(self, name: str, path: Path, options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.path = path
        self.options = options or {}
        self.ready = False

    def load(self) -> None:
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        """The v2 model metadata: name, versions, platform, inputs, outputs."""
        inputs, outputs = self.signature()
        return {
            "name": self.name,
            "versions": None,
            "platform": self.platform,
            "inputs": inputs,
            "outputs": outputs,
        }

    def signature(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return [], []

    def infer(self, request: InferRequest) -> Any:
        raise NotImplementedError

    def predict_v1(self, body: dict[str, Any]) -> Any:
        raise NotImplementedError


def _tensor(name: str, datatype: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape}


def _outputs(result: Any) -> list[tuple[str, np.ndarray]]:
    """A model's result as named output tensors (`output-0`... as KServe names them)."""
    if isinstance(result, dict):
        return [(str(k), np.asarray(v)) for k, v in result.items()]
    if isinstance(result, tuple):
        return [(f"output-{i}", np.asarray(v)) for i, v in enumerate(result)]
    return [("output-0", np.asarray(result))]


class TabularModel(ServedModel):
    """sklearn, XGBoost and LightGBM: one 2-D input (or one column per input), one output."""

    def features(self) -> int | None:
        return None

    def predict_array(self, x: Any) -> Any:
        raise NotImplementedError

    def output_signature(self) -> dict[str, Any]:
        return _tensor("output-0", "FP32", [-1])

    def signature(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        width = self.features()
        return [_tensor("input-0", "FP32", [-1, width if width else -1])], [self.output_signature()]

    def _run(self, x: Any) -> Any:
        try:
            return self.predict_array(x)
        except BAD_INPUT_ERRORS as error:
            raise InvalidInput(f"model {self.name!r} cannot take this input: {error}") from None

    def infer(self, request: InferRequest) -> list[tuple[str, np.ndarray]]:
        if request.parameters.get("content_type") == "pd" or len(request.inputs) > 1:
            x = _dataframe({i.name: i.data for i in request.inputs})
        else:
            x = request.inputs[0].data
            if x.dtype == object:
                raise InvalidInput(
                    f"input {request.inputs[0].name!r}: model {self.name!r} takes numbers, "
                    "not BYTES"
                )
        return _outputs(self._run(x))

    def predict_v1(self, body: dict[str, Any]) -> Any:
        instances = body["instances"] if "instances" in body else body["inputs"]
        if instances and isinstance(instances[0], dict):
            x = _dataframe_rows(instances)
        else:
            try:
                x = np.asarray(instances)
            except ValueError as error:
                raise InvalidInput(f"'instances' is not a regular array: {error}") from None
            if x.dtype.kind not in "biuf":
                raise InvalidInput(f"'instances' must be numbers for model {self.name!r}")
        return self._run(x)


def _dataframe(columns: dict[str, np.ndarray]) -> Any:
    import pandas as pd

    try:
        return pd.DataFrame({k: v.reshape(-1) for k, v in columns.items()})
    except ValueError as error:
        raise InvalidInput(f"inputs as columns: {error}") from None


def _dataframe_rows(rows: list[Any]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows)


def _unpickle(path: Path) -> Any:
    """A pickled model: a notebook step's marshalled value is read back by the notebook
    marshaller (pickle 5 with out-of-band buffers), any other file by joblib, which also
    reads plain pickles."""
    from kubelab.workloads.serving.modelfiles import MARSHAL_TAG

    if (path.parent / MARSHAL_TAG).is_file():
        from kubelab.pipelines.notebook import marshal

        return marshal.load(path.parent)
    import joblib

    return joblib.load(path)  # the user's own file, served at their request


class SKLearnModel(TabularModel):
    format = "sklearn"
    platform = "sklearn"

    def load(self) -> None:
        self.model = _unpickle(self.path)
        if not hasattr(self.model, "predict"):
            raise ModelLoadError(
                f"{self.path.name} holds a {type(self.model).__name__}, which has no predict()"
            )
        self.proba = bool(self.options.get("predict_proba")) and hasattr(
            self.model, "predict_proba"
        )
        self.method = self.model.predict_proba if self.proba else self.model.predict
        self.ready = True

    def features(self) -> int | None:
        return getattr(self.model, "n_features_in_", None)

    def output_signature(self) -> dict[str, Any]:
        classes = getattr(self.model, "classes_", None)
        if self.proba and classes is not None:
            return _tensor("output-0", "FP64", [-1, len(classes)])
        if classes is not None:
            return _tensor("output-0", datatype_of(np.asarray(classes)), [-1])
        return _tensor("output-0", "FP64", [-1])

    def predict_array(self, x: Any) -> Any:
        return self.method(x)


class XGBoostModel(TabularModel):
    format = "xgboost"
    platform = "xgboost"

    def load(self) -> None:
        import xgboost as xgb

        self.booster = xgb.Booster(
            params={"nthread": int(self.options.get("nthread", 1))}, model_file=str(self.path)
        )
        self.xgb = xgb
        self.ready = True

    def features(self) -> int | None:
        return self.booster.num_features()

    def predict_array(self, x: Any) -> Any:
        return self.booster.predict(self.xgb.DMatrix(x))


class LightGBMModel(TabularModel):
    format = "lightgbm"
    platform = "lightgbm"

    def load(self) -> None:
        import lightgbm

        self.booster = lightgbm.Booster(model_file=str(self.path))
        self.threads = int(self.options.get("nthread", 1))
        self.ready = True

    def features(self) -> int | None:
        return self.booster.num_feature()

    def output_signature(self) -> dict[str, Any]:
        return _tensor("output-0", "FP64", [-1])

    def predict_array(self, x: Any) -> Any:
        return self.booster.predict(x, num_threads=self.threads)


class TorchModel(ServedModel):
    """TorchScript (as Triton's libtorch backend serves it) or a pickled `nn.Module`."""

    format = "pytorch"
    platform = "pytorch_torchscript"

    def load(self) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(
            self.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        )
        if self.path.suffix == ".pt2":  # torch.export's format, TorchScript's successor
            self.model = torch.export.load(str(self.path)).module().to(self.device)
            self.platform = "pytorch_export"  # type: ignore[misc]
            self.ready = True
            return
        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; we serve it
                warnings.simplefilter("ignore", DeprecationWarning)
                self.model = torch.jit.load(str(self.path), map_location=self.device)
        except RuntimeError as script_error:
            try:  # a whole module saved with torch.save (a notebook step's output)
                self.model = torch.load(self.path, map_location=self.device, weights_only=False)
            except Exception:
                raise script_error from None
            if not isinstance(self.model, torch.nn.Module):
                raise ModelLoadError(
                    f"{self.path.name} holds a {type(self.model).__name__}, not a torch module"
                ) from None
            self.platform = "pytorch"  # type: ignore[misc]
        self.model.eval()
        self.ready = True

    def _input_names(self) -> list[str]:
        schema = getattr(getattr(self.model, "forward", None), "schema", None)
        if schema is not None:
            return [a.name for a in schema.arguments[1:]]
        try:
            params = list(inspect.signature(self.model.forward).parameters)
        except (TypeError, ValueError):
            return ["input-0"]
        return params or ["input-0"]

    def signature(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        inputs = [_tensor(n, "FP32", [-1]) for n in self._input_names()]
        return inputs, [_tensor("output-0", "FP32", [-1])]

    def _call(self, arrays: list[np.ndarray]) -> Any:
        torch = self.torch
        tensors = []
        for array in arrays:
            if array.dtype == object:
                raise InvalidInput(f"model {self.name!r} takes numeric tensors, not BYTES")
            tensors.append(torch.from_numpy(np.ascontiguousarray(array)).to(self.device))
        try:
            with torch.inference_mode():
                result = self.model(*tensors)
        except (RuntimeError, *BAD_INPUT_ERRORS) as error:
            message = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
            raise InvalidInput(f"model {self.name!r} cannot take this input: {message}") from None
        return self._to_numpy(result)

    def _to_numpy(self, result: Any) -> Any:
        if isinstance(result, self.torch.Tensor):
            return result.detach().cpu().numpy()
        if isinstance(result, dict):
            return {k: self._to_numpy(v) for k, v in result.items()}
        if isinstance(result, list | tuple):
            return tuple(self._to_numpy(v) for v in result)
        return result

    def infer(self, request: InferRequest) -> list[tuple[str, np.ndarray]]:
        names = self._input_names()
        given = {i.name: i.data for i in request.inputs}
        if set(given) == set(names):
            arrays = [given[n] for n in names]  # by name when the names match the signature
        else:
            arrays = [i.data for i in request.inputs]
        return _outputs(self._call(arrays))

    def predict_v1(self, body: dict[str, Any]) -> Any:
        instances = body["instances"] if "instances" in body else body["inputs"]
        try:
            x = np.asarray(instances, dtype=np.float32)
        except (ValueError, TypeError) as error:
            raise InvalidInput(f"'instances' must be numbers: {error}") from None
        result = self._call([x])
        return result[0] if isinstance(result, tuple) else result


class CustomModel(ServedModel):
    """A user's class shaped like KServe's `Model`: `load()`, `predict(payload, headers)`,
    optional `preprocess`/`postprocess`, sync or async; `self.ready` set by `load()`.

    v1 requests pass the JSON body (a dict, as KServe does); v2 requests pass a
    `kubelab.workloads.serving.protocol.InferRequest` (`inputs[i].as_numpy()`, `id`,
    `parameters`, as KServe's `InferRequest`). `predict` may return an array, a dict of
    named arrays, a tuple of arrays, a v1 dict, or an object with KServe's `to_rest()`.
    """

    format = "custom"
    platform = "custom"

    def load(self) -> None:
        target: Any
        if self.path.suffix == ".py":
            target = _class_from_file(self.path, self.options.get("class_name"))
        else:
            target = _unpickle(self.path)
        if isinstance(target, type):
            target = _instantiate(target, self.name)
        if not callable(getattr(target, "predict", None)):
            raise ModelLoadError(f"{type(target).__name__} has no predict() method")
        self.model = target
        if callable(getattr(target, "load", None)) and not getattr(target, "ready", False):
            target.load()
        if getattr(target, "ready", True) is False:
            raise ModelLoadError(
                f"{type(target).__name__}.load() returned without setting self.ready = True"
            )
        self._with_headers = {
            n: _takes_headers(getattr(target, n, None))
            for n in ("preprocess", "predict", "postprocess")
        }
        self.ready = True

    def signature(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        inputs = _call_optional(self.model, "get_input_types") or []
        outputs = _call_optional(self.model, "get_output_types") or []
        return list(inputs), list(outputs)

    async def _call(self, name: str, payload: Any) -> Any:
        method = getattr(self.model, name, None)
        if method is None:
            return payload
        result = method(payload, None) if self._with_headers[name] else method(payload)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _run(self, payload: Any) -> Any:
        try:
            payload = await self._call("preprocess", payload)
            result = await self._call("predict", payload)
            return await self._call("postprocess", result)
        except Exception as error:
            if type(error).__name__ == "InvalidInput" or isinstance(error, ValueError):
                raise InvalidInput(str(error)) from None
            raise

    async def infer(self, request: InferRequest) -> Any:
        result = await self._run(request)
        if hasattr(result, "to_rest"):  # KServe's InferResponse
            return result.to_rest()
        if isinstance(result, dict) and "outputs" in result:
            result.setdefault("model_name", self.name)
            result.setdefault("id", request.id)
            return result
        return _outputs(result)

    async def predict_v1(self, body: dict[str, Any]) -> Any:
        return await self._run(body)


def _class_from_file(path: Path, class_name: str | None) -> type:
    spec = importlib.util.spec_from_file_location(f"kubelab_custom_model_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if class_name:
        found = getattr(module, class_name, None)
        if not isinstance(found, type):
            raise ModelLoadError(f"{path.name} has no class {class_name!r}")
        return found
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and obj.__module__ == module.__name__
        and callable(getattr(obj, "predict", None))
    ]
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        raise ModelLoadError(
            f"{path.name} must define exactly one class with a predict() method "
            f"(found: {names}); name it with {path.name}:ClassName"
        )
    return classes[0]


def _instantiate(cls: type, name: str) -> Any:
    try:
        params = [
            p
            for p in inspect.signature(cls).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        params = []
    return cls(name) if params else cls()


def _takes_headers(method: Any) -> bool:
    if method is None:
        return False
    try:
        params = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return True
    return len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _call_optional(obj: Any, name: str) -> Any:
    method = getattr(obj, name, None)
    if not callable(method):
        return None
    result = method()
    if inspect.isawaitable(result):
        result.close()  # an async metadata method is not awaited during metadata reads
        return None
    return result


MODELS: dict[str, type[ServedModel]] = {
    m.format: m for m in (SKLearnModel, XGBoostModel, LightGBMModel, TorchModel, CustomModel)
}


def make_model(
    name: str, path: str | os.PathLike[str], format: str | None, options: dict[str, Any]
) -> ServedModel:
    """The (not yet loaded) model for `path`, its format named or recognised."""
    file, fmt = resolve_model(path, format)
    return MODELS[fmt](name, file, options)


__all__ = [
    "FORMATS",
    "MODELS",
    "ModelLoadError",
    "ServedModel",
    "make_model",
    "resolve_model",
]
