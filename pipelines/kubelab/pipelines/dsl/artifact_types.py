"""Artifact classes (KFP's `dsl.Artifact` family).

An artifact is a file or directory produced by one task and consumed by others;
its `schema_title` is what the IR records, and `.path` is where a component
reads or writes it on the machine it runs on.
"""

from __future__ import annotations

from typing import Any

# KFP maps remote URIs onto FUSE mounts; local URIs are plain paths.
_REMOTE_PREFIXES = {"gs://": "/gcs/", "s3://": "/s3/", "minio://": "/minio/"}


class Artifact:
    """A generic artifact: a URI, a name and free-form metadata."""

    schema_title = "system.Artifact"
    schema_version = "0.0.1"

    def __init__(
        self, name: str | None = None, uri: str | None = None, metadata: dict | None = None
    ) -> None:
        self.uri = uri or ""
        self.name = name or ""
        self.metadata = metadata or {}

    @property
    def path(self) -> str:
        for prefix, mount in _REMOTE_PREFIXES.items():
            if self.uri.startswith(prefix):
                return mount + self.uri[len(prefix) :]
        return self.uri

    @path.setter
    def path(self, path: str) -> None:
        for prefix, mount in _REMOTE_PREFIXES.items():
            if path.startswith(mount):
                self.uri = prefix + path[len(mount) :]
                return
        self.uri = path

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, uri={self.uri!r}, "
            f"metadata={self.metadata!r})"
        )

    def to_executor_output(self) -> dict[str, Any]:
        """The runtime-artifact JSON KFP's launcher reads back from ExecutorOutput."""
        return {
            "name": self.name,
            "uri": self.uri,
            "metadata": self.metadata,
            "type": {"schemaTitle": self.schema_title},
        }


class Dataset(Artifact):
    """Tabular or other training/evaluation data."""

    schema_title = "system.Dataset"


class Model(Artifact):
    """A trained model file or directory."""

    schema_title = "system.Model"

    @property
    def framework(self) -> str:
        return self.metadata.get("framework", "")

    @framework.setter
    def framework(self, framework: str) -> None:
        self.metadata["framework"] = framework


class Metrics(Artifact):
    """Scalar metrics; the values live in metadata so the UI can show them."""

    schema_title = "system.Metrics"

    def log_metric(self, metric: str, value: float) -> None:
        self.metadata[metric] = value


class ClassificationMetrics(Artifact):
    """ROC curve and confusion matrix in the shape KFP's UI renders."""

    schema_title = "system.ClassificationMetrics"

    def log_roc_data_point(self, fpr: float, tpr: float, threshold: float) -> None:
        points = self.metadata.setdefault("confidenceMetrics", [])
        points.append({"confidenceThreshold": threshold, "recall": tpr, "falsePositiveRate": fpr})

    def log_roc_curve(self, fpr: list[float], tpr: list[float], threshold: list[float]) -> None:
        if not len(fpr) == len(tpr) == len(threshold):
            raise ValueError(
                "log_roc_curve: fpr, tpr and threshold must have the same length, got "
                f"{len(fpr)}, {len(tpr)}, {len(threshold)}"
            )
        for f, t, th in zip(fpr, tpr, threshold, strict=True):
            self.log_roc_data_point(fpr=f, tpr=t, threshold=th)

    def set_confusion_matrix_categories(self, categories: list[str]) -> None:
        self._categories = list(categories)
        self._matrix = [[0] * len(categories) for _ in categories]
        self._flush_matrix()

    def log_confusion_matrix_row(self, row_category: str, row: list[float]) -> None:
        index = self._category_index(row_category)
        if len(row) != len(self._categories):
            raise ValueError(
                f"log_confusion_matrix_row: row has {len(row)} values, "
                f"expected {len(self._categories)}"
            )
        self._matrix[index] = list(row)
        self._flush_matrix()

    def log_confusion_matrix_cell(self, row_category: str, col_category: str, value: int) -> None:
        self._matrix[self._category_index(row_category)][self._category_index(col_category)] = value
        self._flush_matrix()

    def log_confusion_matrix(self, categories: list[str], matrix: list[list[float]]) -> None:
        self.set_confusion_matrix_categories(categories)
        if len(matrix) != len(categories):
            raise ValueError(
                f"log_confusion_matrix: matrix has {len(matrix)} rows, expected {len(categories)}"
            )
        for category, row in zip(categories, matrix, strict=True):
            self.log_confusion_matrix_row(category, row)

    def _category_index(self, category: str) -> int:
        categories = getattr(self, "_categories", None)
        if categories is None:
            raise ValueError("call set_confusion_matrix_categories first")
        if category not in categories:
            raise ValueError(f"unknown category {category!r}; categories are {categories}")
        return categories.index(category)

    def _flush_matrix(self) -> None:
        self.metadata["confusionMatrix"] = {
            "annotationSpecs": [{"displayName": c} for c in self._categories],
            "rows": [{"row": list(r)} for r in self._matrix],
        }


class SlicedClassificationMetrics(Artifact):
    """Classification metrics per data slice."""

    schema_title = "system.SlicedClassificationMetrics"

    def _slice(self, slice_name: str) -> ClassificationMetrics:
        slices = self.__dict__.setdefault("_slices", {})
        if slice_name not in slices:
            slices[slice_name] = ClassificationMetrics()
        return slices[slice_name]

    def _flush(self) -> None:
        self.metadata["evaluationSlices"] = [
            {"slice": name, "sliceClassificationMetrics": m.metadata}
            for name, m in self.__dict__.get("_slices", {}).items()
        ]

    def log_roc_reading(self, slice: str, threshold: float, tpr: float, fpr: float) -> None:
        self._slice(slice).log_roc_data_point(fpr=fpr, tpr=tpr, threshold=threshold)
        self._flush()

    def load_roc_readings(self, slice: str, readings: list[list[float]]) -> None:
        for threshold, tpr, fpr in readings:
            self.log_roc_reading(slice, threshold, tpr, fpr)

    def log_confusion_matrix(
        self, slice: str, categories: list[str], matrix: list[list[float]]
    ) -> None:
        self._slice(slice).log_confusion_matrix(categories, matrix)
        self._flush()


class HTML(Artifact):
    """An HTML page the UI renders."""

    schema_title = "system.HTML"


class Markdown(Artifact):
    """A Markdown document the UI renders."""

    schema_title = "system.Markdown"


_SCHEMA_TITLE_TO_TYPE: dict[str, type[Artifact]] = {
    cls.schema_title: cls
    for cls in (
        Artifact,
        Dataset,
        Model,
        Metrics,
        ClassificationMetrics,
        SlicedClassificationMetrics,
        HTML,
        Markdown,
    )
}

# Type names KFP accepts as strings, e.g. OutputPath("Dataset").
_NAME_TO_TYPE: dict[str, type[Artifact]] = {
    cls.__name__.lower(): cls for cls in _SCHEMA_TITLE_TO_TYPE.values()
}


# The running task's directory, set by the executor (KFP's CONTAINER_TASK_ROOT).
CONTAINER_TASK_ROOT: str | None = None


def _remote(path: str) -> str:
    for prefix, mount in _REMOTE_PREFIXES.items():
        if path.startswith(mount):
            return prefix + path[len(mount) :]
    return path


def get_uri(suffix: str = "Output") -> str:
    """A URI under the running task's own location, for an artifact the component
    creates and returns (`return Dataset(uri=dsl.get_uri())`). Task run time only."""
    import os

    if CONTAINER_TASK_ROOT is None:
        raise RuntimeError(
            "dsl.get_uri() can only be called while a task runs; the task root is unknown here."
        )
    return os.path.join(_remote(CONTAINER_TASK_ROOT), suffix)


def class_for_schema_title(schema_title: str) -> type[Artifact]:
    """The artifact class for an IR schema title; unknown titles are plain Artifacts."""
    return _SCHEMA_TITLE_TO_TYPE.get(schema_title, Artifact)


def class_for_name(name: str) -> type[Artifact] | None:
    """The artifact class for a type name ("Dataset", "system.Model"), or None."""
    if name in _SCHEMA_TITLE_TO_TYPE:
        return _SCHEMA_TITLE_TO_TYPE[name]
    return _NAME_TO_TYPE.get(name.lower())


def is_artifact_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, Artifact)
