"""Which file of a path is the model, and in which format: by the notebook marshaller's
tag, the extension, or the file's first bytes. No numpy, no ML library: `kubelab serve`
and the REST API check a spec with this before any server starts.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

FORMATS = ("sklearn", "xgboost", "lightgbm", "pytorch", "custom")
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "sklearn": (".joblib", ".pkl", ".pickle"),
    "xgboost": (".json", ".ubj", ".bst"),
    "lightgbm": (".txt", ".bst", ".model"),
    "pytorch": (".pt", ".pth", ".torchscript", ".pt2"),
    "custom": (".py",),
}
MARSHAL_TAG = "kubelab-marshal.json"  # written by the notebook step marshaller
_MARSHALLER_FORMATS = {"sklearn": "sklearn", "torch-module": "pytorch", "cloudpickle": "custom"}


class ModelLoadError(Exception):
    """A model file that cannot be found, recognised or loaded."""


# -- finding the file and its format ------------------------------------------------------


def _sniff(path: Path) -> str | None:
    """The format of a file from its first bytes, for files without a telling extension."""
    try:
        with path.open("rb") as file:
            head = file.read(64)
    except OSError:
        return None
    if head.startswith(b"PK") and zipfile.is_zipfile(path):
        return "pytorch"  # TorchScript archives and torch.save files are zip files
    if head.startswith(b"tree\n"):
        return "lightgbm"
    if head.lstrip().startswith(b'{"learner"'):
        return "xgboost"
    if head[:1] == b"\x80" or head[:2] in (b"\x78\x9c", b"\x78\x01", b"\x78\xda"):
        return "sklearn"  # pickle, or joblib's zlib-compressed pickle
    return None


def _by_extension(path: Path) -> list[str]:
    return [fmt for fmt, exts in EXTENSIONS.items() if path.suffix.lower() in exts]


def resolve_model(path: str | os.PathLike[str], format: str | None = None) -> tuple[Path, str]:
    """The model file under `path` and its format; `ModelLoadError` says what is wrong."""
    path = Path(path)
    if format is not None and format not in FORMATS:
        raise ModelLoadError(f"unknown format {format!r}; formats: {', '.join(FORMATS)}")
    if not path.exists():
        raise ModelLoadError(f"{path} does not exist")
    if path.is_dir():
        tag = path / MARSHAL_TAG
        if tag.is_file():
            info = json.loads(tag.read_text())
            fmt = format or _MARSHALLER_FORMATS.get(info.get("marshaller", ""))
            if fmt is None:
                raise ModelLoadError(
                    f"{path} holds a {info.get('type', 'value')} (saved as "
                    f"{info.get('marshaller')}), which is not a model kubelab can serve"
                )
            return path / info["file"], fmt
        exts = EXTENSIONS[format] if format else tuple(e for x in EXTENSIONS.values() for e in x)
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts
        )
        if not files:
            raise ModelLoadError(
                f"no model file in {path} (looked for {', '.join(sorted(set(exts)))})"
            )
        if len(files) > 1:
            names = ", ".join(p.name for p in files)
            raise ModelLoadError(
                f"more than one model file in {path} ({names}); serve one file, or a "
                "directory with only one"
            )
        path = files[0]
    if format:
        return path, format
    candidates = _by_extension(path)
    if len(candidates) == 1:
        return path, candidates[0]
    sniffed = _sniff(path)
    if sniffed and (not candidates or sniffed in candidates):
        return path, sniffed
    raise ModelLoadError(
        f"cannot tell the format of {path.name}; pass format= one of {', '.join(FORMATS)}"
    )


def servable_output(path: str | os.PathLike[str], schema_title: str | None = None) -> dict | None:
    """`{format, type}` when a run step's output at `path` is a model a server can load,
    else None: a value the notebook marshaller saved as a model (scikit-learn, a torch
    module), or a `Model` artifact holding a model file. Other notebook values (numbers,
    frames, arbitrary pickles) are not offered as models, though a custom class can
    still be served by path."""
    path = Path(path)
    tag = path / MARSHAL_TAG
    if tag.is_file():
        try:
            info = json.loads(tag.read_text())
        except (OSError, ValueError):
            return None
        fmt = _MARSHALLER_FORMATS.get(str(info.get("marshaller", "")))
        if fmt is None or fmt == "custom":
            return None
        return {"format": fmt, "type": info.get("type")}
    if schema_title != "system.Model" or not path.exists():
        return None
    try:
        _, fmt = resolve_model(path)
    except ModelLoadError:
        return None
    return {"format": fmt, "type": None}
