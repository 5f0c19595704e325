"""How a variable crosses from one step to the next: a registry of marshallers by type.

Each value is written into a directory (the step's output artifact) as one data file
plus `kubelab-marshal.json`, a type tag naming the marshaller that wrote it, so the
reading step never has to guess. Type checks look at `sys.modules` instead of
importing numpy/pandas/torch, so saving a plain list never pays for a torch import.
Order matters: the first marshaller whose `matches` is true wins; cloudpickle is last.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

TAG_FILE = "kubelab-marshal.json"


@dataclass(frozen=True)
class Marshaller:
    """Saves and loads one family of types."""

    name: str
    matches: Callable[[Any], bool]
    save: Callable[[Any, Path], None]  # path: the data file to write
    load: Callable[[Path], Any]
    suffix: str = ".bin"  # extension of the data file


class MarshalError(Exception):
    """A value that cannot be saved; the caller adds which variable, step and cell."""


def _module(name: str) -> Any:
    return sys.modules.get(name)


def _is_instance(obj: Any, module: str, attribute: str) -> bool:
    mod = _module(module)
    if mod is None:
        return False
    cls: Any = mod
    for part in attribute.split("."):
        cls = getattr(cls, part, None)
        if cls is None:
            return False
    return isinstance(obj, cls)


# -- numpy --------------------------------------------------------------------------
def _numpy_matches(obj: Any) -> bool:
    # Object arrays would need pickle inside .npy; cloudpickle handles them better.
    return _is_instance(obj, "numpy", "ndarray") and obj.dtype != object


def _numpy_save(obj: Any, path: Path) -> None:
    import numpy

    numpy.save(path, obj, allow_pickle=False)


def _numpy_load(path: Path) -> Any:
    import numpy

    return numpy.load(path, allow_pickle=False)


# -- pandas ---------------------------------------------------------------------------
def _has_pyarrow() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def _pandas_matches(obj: Any) -> bool:
    return _is_instance(obj, "pandas", "DataFrame") or _is_instance(obj, "pandas", "Series")


def _pandas_save(obj: Any, path: Path) -> None:
    # Parquet is portable across pandas versions; it needs pyarrow and string column
    # names, and returns a DataFrame, so Series and odd frames use pandas' pickle.
    import pandas

    parquet_ok = (
        _has_pyarrow()
        and isinstance(obj, pandas.DataFrame)
        and all(isinstance(c, str) for c in obj.columns)
    )
    if parquet_ok:
        obj.to_parquet(path.with_suffix(".parquet"))
    else:
        obj.to_pickle(path.with_suffix(".pkl"))


def _pandas_load(path: Path) -> Any:
    import pandas

    parquet = path.with_suffix(".parquet")
    if parquet.exists():
        return pandas.read_parquet(parquet)
    return pandas.read_pickle(path.with_suffix(".pkl"))


# -- scikit-learn ---------------------------------------------------------------------
def _sklearn_matches(obj: Any) -> bool:
    return _is_instance(obj, "sklearn.base", "BaseEstimator")


def _joblib_save(obj: Any, path: Path) -> None:
    import joblib

    # Estimators defined in the notebook live in __main__; register them by value.
    cls_module = type(obj).__module__
    if cls_module == "__main__":
        with path.open("wb") as file:
            cloudpickle.dump(obj, file)
        return
    joblib.dump(obj, path)


def _joblib_load(path: Path) -> Any:
    import joblib

    return joblib.load(path)


# -- torch ------------------------------------------------------------------------------
def _torch_tensor_matches(obj: Any) -> bool:
    return _is_instance(obj, "torch", "Tensor")


def _torch_module_matches(obj: Any) -> bool:
    return _is_instance(obj, "torch", "nn.Module")


def _torch_tensor_save(obj: Any, path: Path) -> None:
    import torch

    torch.save(obj, path)


def _torch_tensor_load(path: Path) -> Any:
    import torch

    return torch.load(path, weights_only=True)


def _torch_module_save(obj: Any, path: Path) -> None:
    # A module's class is usually defined in the notebook (__main__), which the next
    # step does not have: pickle it by value with cloudpickle, weights included.
    import torch

    torch.save(obj, path, pickle_module=cloudpickle)


def _torch_module_load(path: Path) -> Any:
    import torch

    return torch.load(path, weights_only=False)


# -- fallback ---------------------------------------------------------------------------
def _cloudpickle_save(obj: Any, path: Path) -> None:
    with path.open("wb") as file:
        cloudpickle.dump(obj, file)


def _cloudpickle_load(path: Path) -> Any:
    with path.open("rb") as file:
        return pickle.load(file)


REGISTRY: list[Marshaller] = [
    Marshaller("numpy", _numpy_matches, _numpy_save, _numpy_load, ".npy"),
    Marshaller("pandas", _pandas_matches, _pandas_save, _pandas_load, ".pandas"),
    Marshaller("sklearn", _sklearn_matches, _joblib_save, _joblib_load, ".joblib"),
    Marshaller(
        "torch-tensor", _torch_tensor_matches, _torch_tensor_save, _torch_tensor_load, ".pt"
    ),
    Marshaller(
        "torch-module", _torch_module_matches, _torch_module_save, _torch_module_load, ".pt"
    ),
    Marshaller("cloudpickle", lambda obj: True, _cloudpickle_save, _cloudpickle_load, ".pkl"),
]


def register(marshaller: Marshaller) -> None:
    """Add a marshaller ahead of the built-in ones (so it wins for its types)."""
    REGISTRY.insert(0, marshaller)


def marshaller_for(obj: Any) -> Marshaller:
    return next(m for m in REGISTRY if m.matches(obj))


def by_name(name: str) -> Marshaller:
    for marshaller in REGISTRY:
        if marshaller.name == name:
            return marshaller
    raise MarshalError(f"no marshaller named {name!r} (written by a newer kubelab?)")


def save(obj: Any, directory: str | Path) -> Marshaller:
    """Write `obj` into `directory` with the first matching marshaller; return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marshaller = marshaller_for(obj)
    data = directory / f"data{marshaller.suffix}"
    try:
        marshaller.save(obj, data)
    except Exception as error:
        raise MarshalError(
            f"{type(obj).__module__}.{type(obj).__qualname__} cannot be saved with "
            f"{marshaller.name}: {type(error).__name__}: {error}"
        ) from error
    tag = {
        "marshaller": marshaller.name,
        "file": data.name,
        "type": f"{type(obj).__module__}.{type(obj).__qualname__}",
    }
    (directory / TAG_FILE).write_text(json.dumps(tag))
    return marshaller


def load(directory: str | Path) -> Any:
    """Read back a value written by `save`, using the marshaller its type tag names."""
    directory = Path(directory)
    tag = json.loads((directory / TAG_FILE).read_text())
    return by_name(tag["marshaller"]).load(directory / tag["file"])


def describe(directory: str | Path) -> dict[str, str]:
    """The type tag of a saved value (for logs, validation and the UI)."""
    return json.loads((Path(directory) / TAG_FILE).read_text())
