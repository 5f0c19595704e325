"""Save/load throughput of the notebook marshallers by type and size, with the hash's share.

    .venv/bin/python benchmarks/marshal_throughput.py [--sizes 1,100,1000] [--repeat 3]

For each type (ndarray, DataFrame, scikit-learn model, torch tensor, dict) and size in
MB it times `marshal.save` (hash while writing), `marshal.load` (copy-on-write map for
large values), the load plus one full read of the data (a mapped load pays its page
faults there), the hash alone over the same bytes, and what kubelab did before
(np.save/np.load, DataFrame.to_pickle, joblib, torch.save, cloudpickle) on the same
value. Throughput is size / seconds (best of --repeat). Files go to a temporary folder
on the disk of --dir (default: the system's temp dir), not to /dev/shm. JSON goes to
benchmarks/results/. Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.neighbors import KNeighborsClassifier

from kubelab.pipelines import digests
from kubelab.pipelines.notebook import marshal

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
MB = 1_000_000


def make(kind: str, size_mb: float) -> Any:
    n = int(size_mb * MB / 8)
    rng = np.random.default_rng(0)
    if kind == "ndarray":
        return rng.random(n)
    if kind == "DataFrame":
        cols = 4
        return pd.DataFrame({f"c{i}": rng.random(n // cols) for i in range(cols)})
    if kind == "sklearn model":  # k-NN keeps its training data: size follows the data
        rows = n // 8
        return KNeighborsClassifier().fit(rng.random((rows, 7)), rng.integers(0, 2, rows))
    if kind == "torch tensor":
        return torch.from_numpy(rng.random(n))
    if kind == "dict":
        return {"weights": rng.random(n // 2), "bias": rng.random(n // 2), "meta": {"k": 1}}
    raise ValueError(kind)


def _touch(value: Any) -> float:
    """Read every byte once (a mapped load pays its page faults here)."""
    if isinstance(value, np.ndarray):
        return float(value.sum())
    if isinstance(value, pd.DataFrame):
        return float(value.to_numpy().sum())
    if isinstance(value, torch.Tensor):
        return float(value.sum())
    if isinstance(value, KNeighborsClassifier):
        return float(value._fit_X.sum())
    if isinstance(value, dict):
        return float(value["weights"].sum() + value["bias"].sum())
    return 0.0


def _before_save(value: Any, path: Path) -> None:
    if isinstance(value, np.ndarray):
        np.save(path, value, allow_pickle=False)
    elif isinstance(value, pd.DataFrame):
        value.to_pickle(path)
    elif isinstance(value, KNeighborsClassifier):
        joblib.dump(value, path)
    elif isinstance(value, torch.Tensor):
        torch.save(value, path)
    else:
        with open(path, "wb") as file:
            cloudpickle.dump(value, file)


def _before_load(value: Any, path: Path) -> Any:
    if isinstance(value, np.ndarray):
        return np.load(path if path.suffix == ".npy" else path.with_suffix(".npy"))
    if isinstance(value, pd.DataFrame):
        return pd.read_pickle(path)
    if isinstance(value, KNeighborsClassifier):
        return joblib.load(path)
    if isinstance(value, torch.Tensor):
        return torch.load(path, weights_only=True)
    with open(path, "rb") as file:
        return pickle.load(file)


def best(fn: Callable[[], Any], repeat: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(kind: str, size_mb: float, repeat: int, folder: Path) -> dict[str, Any]:
    value = make(kind, size_mb)
    out = folder / "new"
    old = folder / "old.npy"

    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)
        old.unlink(missing_ok=True)

    save_s = best(lambda: marshal.save(value, out), repeat, clean)
    size = marshal.describe(out)["bytes"]
    marshaller = marshal.marshaller_for(value)
    if marshaller.dump is not None:
        pieces = marshaller.dump(value)
    else:  # a library that writes the file itself (torch): hash the same bytes in memory
        pieces = [(out / marshal.describe(out)["file"]).read_bytes()]
    hash_s = best(lambda: digests.digest_of(pieces), repeat)
    load_s = best(lambda: marshal.load(out), repeat)
    load_read_s = best(lambda: _touch(marshal.load(out)), repeat)
    old_save_s = best(lambda: _before_save(value, old), repeat)
    old_load_read_s = best(lambda: _touch(_before_load(value, old)), repeat)
    clean()
    return {
        "type": kind,
        "size_mb": size_mb,
        "bytes": size,
        "save_s": save_s,
        "load_s": load_s,
        "load_read_s": load_read_s,
        "hash_s": hash_s,
        "save_gb_s": size / save_s / 1e9,
        "load_read_gb_s": size / load_read_s / 1e9,
        "hash_share_of_save": hash_s / save_s,
        "before_save_gb_s": size / old_save_s / 1e9,
        "before_load_read_gb_s": size / old_load_read_s / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,100,1000", help="sizes in MB, comma-separated")
    parser.add_argument("--types", default="ndarray,DataFrame,sklearn model,torch tensor,dict")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the files go (default: temp dir)")
    args = parser.parse_args()
    rows = []
    print(
        f"{'type':<14} {'MB':>6} {'save GB/s':>10} {'load+read':>10} {'lazy load s':>12} "
        f"{'hash share':>11} {'before save':>12} {'before load':>12}"
    )
    with tempfile.TemporaryDirectory(prefix="kubelab-marshal-", dir=args.dir) as tmp:
        for kind in args.types.split(","):
            for size in (float(s) for s in args.sizes.split(",")):
                row = measure(kind, size, args.repeat, Path(tmp))
                rows.append(row)
                print(
                    f"{kind:<14} {size:>6.0f} {row['save_gb_s']:>10.2f} "
                    f"{row['load_read_gb_s']:>10.2f} {row['load_s']:>12.4f} "
                    f"{row['hash_share_of_save']:>10.0%} {row['before_save_gb_s']:>12.2f} "
                    f"{row['before_load_read_gb_s']:>12.2f}",
                    flush=True,
                )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"marshal_throughput-{stamp}.json"
    load = os.getloadavg()[0]
    path.write_text(
        json.dumps({"when": stamp, "cpus": os.cpu_count(), "load": load, "rows": rows}, indent=2)
    )
    print(f"wrote {path.relative_to(REPO)} (load average {load:.1f})", file=sys.stderr)


if __name__ == "__main__":
    main()
