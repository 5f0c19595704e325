"""How a variable crosses from one step to the next: a registry of marshallers by type.

Each value is written into a directory (the step's output artifact) as one data file
plus `kubelab-marshal.json`, a type tag naming the marshaller that wrote it (so the
reading step never has to guess) and the digest of the data file.

Speed: the built-in marshallers hand over their bytes as a list of buffers that point
into the value's own memory (a NumPy array's data, the out-of-band buffers of pickle
protocol 5), so saving is one pass that hashes (xxh3, or BLAKE2 without `xxhash`) and
writes each piece, and loading maps the file copy-on-write: arrays and DataFrames are
backed by the page cache, and a step that changes them never changes the file. A
value a step loaded and hands on unchanged (same digest) is linked to the producer's
file instead of being written again.

Type checks look at `sys.modules` instead of importing numpy/pandas/torch, so saving
a plain list never pays for a torch import. Order matters: the first marshaller whose
`matches` is true wins; cloudpickle is last.
"""

from __future__ import annotations

import io
import json
import mmap
import os
import pickle
import shutil
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

from kubelab.pipelines import digests

TAG_FILE = "kubelab-marshal.json"

# Values at least this large are loaded by mapping the file (copy-on-write); smaller
# ones are read, which costs less than setting up a mapping.
MMAP_MIN_BYTES = 1 << 20
_ALIGN = 64  # buffers start on cache-line boundaries, as NumPy likes them

Pieces = list[Any]  # objects with the buffer protocol, written one after the other


@dataclass(frozen=True)
class Marshaller:
    """Saves and loads one family of types.

    A custom marshaller gives `save(obj, path)`, which writes the data file itself.
    The built-in ones give `dump(obj)`, the file's bytes as buffers (no copies), which
    lets `save` hash while writing and skip writing a value that did not change, or
    `stream(obj, file)` for libraries that write to a file object themselves (torch):
    the file hashes what goes through it.
    """

    name: str
    matches: Callable[[Any], bool]
    save: Callable[[Any, Path], None] | None
    load: Callable[[Path], Any]
    suffix: str = ".bin"  # extension of the data file
    dump: Callable[[Any], Pieces] | None = None
    stream: Callable[[Any, Any], None] | None = None


@dataclass(frozen=True)
class Saved:
    """What `save` did: for the run's marshalling figures and the engine's cache."""

    marshaller: Marshaller
    digest: str
    bytes: int
    seconds: float
    linked: bool  # handed on unchanged: the producer's file, not a copy


class MarshalError(Exception):
    """A value that cannot be saved; the caller adds which variable, step and cell."""


class _HashingFile:
    """A binary file that hashes what is written to it (for `Marshaller.stream`)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.algorithm, self.hasher = digests.hasher()
        self.size = 0

    def write(self, data: Any) -> int:
        for chunk in digests.chunks(data):
            self.hasher.update(chunk)
            self.size += len(chunk)
            while chunk:
                chunk = chunk[self.raw.write(chunk) or 0 :]
        return len(digests.as_bytes(data))

    def flush(self) -> None:
        self.raw.flush()

    @property
    def digest(self) -> str:
        return f"{self.algorithm}:{self.hasher.hexdigest()}"


def _stream(path: Path, marshaller: Marshaller, obj: Any) -> tuple[str, int, Path]:
    """Let the library write the value to a new file next to `path`: (digest, size, file)."""
    assert marshaller.stream is not None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb", buffering=0) as raw:
        file = _HashingFile(raw)
        marshaller.stream(obj, file)
    return file.digest, file.size, tmp


def _write(path: Path, pieces: Pieces, *, hashing: bool) -> tuple[str | None, int]:
    """Write the pieces to `path` (a new file: a linked one is never changed in place),
    hashing each chunk while it is in the cache; (digest, size)."""
    algorithm, hasher = digests.hasher()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    size = 0
    with open(tmp, "wb", buffering=0) as file:
        for piece in pieces:
            for chunk in digests.chunks(piece):
                if hashing:
                    hasher.update(chunk)
                size += len(chunk)
                while chunk:
                    written = file.write(chunk) or 0
                    chunk = chunk[written:]
    os.replace(tmp, path)
    return (f"{algorithm}:{hasher.hexdigest()}" if hashing else None), size


def _map(path: Path) -> memoryview:
    """The file's bytes, writable: a private (copy-on-write) mapping of large files."""
    size = path.stat().st_size
    if size < MMAP_MIN_BYTES:
        return memoryview(bytearray(path.read_bytes()))
    with open(path, "rb") as file:
        return memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY))


# -- type checks without imports ----------------------------------------------------------
def _is_instance(obj: Any, module: str, attribute: str) -> bool:
    mod = sys.modules.get(module)
    if mod is None:
        return False
    cls: Any = mod
    for part in attribute.split("."):
        cls = getattr(cls, part, None)
        if cls is None:
            return False
    return isinstance(obj, cls)


# -- numpy: .npy, loaded copy-on-write -------------------------------------------------------
def _numpy_matches(obj: Any) -> bool:
    # Arrays holding Python objects would need pickle inside .npy; cloudpickle handles them.
    return _is_instance(obj, "numpy", "ndarray") and not obj.dtype.hasobject


def _numpy_dump(obj: Any) -> Pieces:
    import numpy
    from numpy.lib import format as npy

    array = (
        obj if obj.flags.c_contiguous or obj.flags.f_contiguous else numpy.ascontiguousarray(obj)
    )
    header = io.BytesIO()
    fields = npy.header_data_from_array_1_0(array)
    try:
        npy.write_array_header_1_0(header, fields)
    except ValueError:  # a header too long for format 1.0 (very many fields)
        header = io.BytesIO()
        npy.write_array_header_2_0(header, fields)
    flat = array.T if fields["fortran_order"] else array
    data = flat.reshape(-1).view(numpy.uint8) if array.size else b""
    return [header.getbuffer(), data]


def _numpy_load(path: Path) -> Any:
    import numpy

    if path.stat().st_size < MMAP_MIN_BYTES:
        return numpy.load(path, allow_pickle=False)
    # "c": copy-on-write. A plain ndarray view, so `type(x) is np.ndarray` still holds.
    return numpy.load(path, mmap_mode="c", allow_pickle=False).view(numpy.ndarray)


# -- pickle protocol 5 with out-of-band buffers (pandas, scikit-learn, everything else) -----
_PICKLE5_MAGIC = b"KLPICKL5"


def _padding(offset: int) -> bytes:
    return b"\0" * (-offset % _ALIGN)


def _pickle5_dump(obj: Any) -> Pieces:
    """[header, pickle stream, each raw buffer 64-byte aligned]: NumPy data (of arrays,
    DataFrame blocks, fitted estimators) is never copied into the pickle stream."""
    buffers: list[pickle.PickleBuffer] = []
    stream = cloudpickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    header = _PICKLE5_MAGIC + struct.pack(f"<QQ{len(raws)}Q", len(raws), len(stream),
                                          *(len(r) for r in raws))  # fmt: skip
    pieces: Pieces = [header, stream]
    offset = len(header) + len(stream)
    for raw in raws:
        pad = _padding(offset)
        pieces += [pad, raw]
        offset += len(pad) + len(raw)
    return pieces


def _pickle5_load(path: Path) -> Any:
    data = _map(path)
    if bytes(data[:8]) != _PICKLE5_MAGIC:
        raise MarshalError(f"{path} was not written by kubelab's pickle marshaller")
    count, stream_size = struct.unpack_from("<QQ", data, 8)
    sizes = struct.unpack_from(f"<{count}Q", data, 24)
    offset = 24 + 8 * count
    stream = data[offset : offset + stream_size]
    offset += stream_size
    buffers = []
    for size in sizes:
        offset += len(_padding(offset))
        buffers.append(data[offset : offset + size])
        offset += size
    return pickle.loads(stream, buffers=buffers)


def _pandas_matches(obj: Any) -> bool:
    return _is_instance(obj, "pandas", "DataFrame") or _is_instance(obj, "pandas", "Series")


def _sklearn_matches(obj: Any) -> bool:
    return _is_instance(obj, "sklearn.base", "BaseEstimator")


# -- torch --------------------------------------------------------------------------------------
def _torch_tensor_matches(obj: Any) -> bool:
    return _is_instance(obj, "torch", "Tensor")


def _torch_module_matches(obj: Any) -> bool:
    return _is_instance(obj, "torch", "nn.Module")


def _torch_tensor_stream(obj: Any, file: Any) -> None:
    import torch

    torch.save(obj, file)


def _torch_tensor_load(path: Path) -> Any:
    import torch

    return torch.load(path, weights_only=True, mmap=path.stat().st_size >= MMAP_MIN_BYTES)


def _torch_module_stream(obj: Any, file: Any) -> None:
    # A module's class is usually defined in the notebook (__main__), which the next
    # step does not have: pickle it by value with cloudpickle, weights included.
    import torch

    torch.save(obj, file, pickle_module=cloudpickle)


def _torch_module_load(path: Path) -> Any:
    import torch

    return torch.load(path, weights_only=False)


REGISTRY: list[Marshaller] = [
    Marshaller("numpy", _numpy_matches, None, _numpy_load, ".npy", _numpy_dump),
    Marshaller("pandas", _pandas_matches, None, _pickle5_load, ".pkl5", _pickle5_dump),
    Marshaller("sklearn", _sklearn_matches, None, _pickle5_load, ".pkl5", _pickle5_dump),
    Marshaller(
        "torch-tensor",
        _torch_tensor_matches,
        None,
        _torch_tensor_load,
        ".pt",
        stream=_torch_tensor_stream,
    ),
    Marshaller(
        "torch-module",
        _torch_module_matches,
        None,
        _torch_module_load,
        ".pt",
        stream=_torch_module_stream,
    ),
    Marshaller("cloudpickle", lambda obj: True, None, _pickle5_load, ".pkl5", _pickle5_dump),
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


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _link(source: Path, target: Path) -> None:
    """`target` becomes the same file as `source` (a copy where links are refused)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def save(obj: Any, directory: str | Path, *, previous: str | Path | None = None) -> Saved:
    """Write `obj` into `directory` with the first matching marshaller.

    `previous` is the artifact directory the value was loaded from in this step: if
    the value's bytes still have the digest recorded there, its data file is linked
    instead of written again.
    """
    started = time.perf_counter()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marshaller = marshaller_for(obj)
    data = directory / f"data{marshaller.suffix}"
    linked = False
    try:
        if marshaller.stream is not None:
            digest, size, tmp = _stream(data, marshaller, obj)
            before = _tag_or_empty(previous)
            linked = before.get("marshaller") == marshaller.name and before.get("digest") == digest
            if linked:  # written for nothing, but the artifact stays one file on disk
                tmp.unlink()
                _link(Path(str(previous), before["file"]), data)
            else:
                os.replace(tmp, data)
        elif marshaller.dump is None:
            assert marshaller.save is not None, f"marshaller {marshaller.name} saves nothing"
            data.unlink(missing_ok=True)  # never write into a file another artifact links
            marshaller.save(obj, data)
            digest, size = digests.file_digest(data), data.stat().st_size
        else:
            pieces = marshaller.dump(obj)
            before = _tag_or_empty(previous)
            known: str | None = None
            if before.get("marshaller") == marshaller.name and before.get("digest"):
                known = digests.digest_of(pieces)
                linked = known == before["digest"]
            if linked:
                _link(Path(str(previous), before["file"]), data)
                digest, size = known or "", data.stat().st_size
            else:
                written, size = _write(data, pieces, hashing=known is None)
                digest = known or written or ""
    except MarshalError:
        raise
    except Exception as error:
        raise MarshalError(
            f"{_type_name(obj)} cannot be saved with {marshaller.name}: "
            f"{type(error).__name__}: {error}"
        ) from error
    tag = {
        "marshaller": marshaller.name,
        "file": data.name,
        "type": _type_name(obj),
        "digest": digest,
        "bytes": size,
    }
    # Deterministic text: the engine's cache derives the artifact's digest from it.
    (directory / TAG_FILE).write_text(json.dumps(tag, sort_keys=True))
    return Saved(marshaller, digest, size, time.perf_counter() - started, linked)


def _tag_or_empty(directory: str | Path | None) -> dict[str, Any]:
    if directory is None or not (Path(directory) / TAG_FILE).exists():
        return {}
    return describe(directory)


def load(directory: str | Path) -> Any:
    """Read back a value written by `save`, using the marshaller its type tag names."""
    directory = Path(directory)
    tag = describe(directory)
    return by_name(tag["marshaller"]).load(directory / tag["file"])


def describe(directory: str | Path) -> dict[str, Any]:
    """The type tag of a saved value (for logs, validation and the UI)."""
    return json.loads((Path(directory) / TAG_FILE).read_text())
