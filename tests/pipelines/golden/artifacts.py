"""Golden: Dataset/Model/Metrics/ClassificationMetrics/HTML/Markdown, InputPath/OutputPath."""
# ruff: noqa: UP014  -- written as ordinary KFP SDK code

from typing import NamedTuple

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import (
    HTML,
    ClassificationMetrics,
    Dataset,
    Input,
    InputPath,
    Markdown,
    Metrics,
    Model,
    Output,
    OutputPath,
)


@dsl.component
def make_data(rows: int, data: Output[Dataset]):
    with open(data.path, "w") as f:
        f.write("\n".join(str(i) for i in range(rows)))
    data.metadata["rows"] = rows


@dsl.component
def train(
    data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    roc: Output[ClassificationMetrics],
):
    with open(data.path) as f:
        values = [int(x) for x in f.read().split()]
    mean = sum(values) / len(values)
    with open(model.path, "w") as f:
        f.write(f"mean={mean}")
    model.metadata["framework"] = "mean"
    metrics.log_metric("mean", mean)
    metrics.log_metric("rows", len(values))
    roc.log_roc_curve([0.0, 0.5, 1.0], [0.0, 0.8, 1.0], [1.0, 0.5, 0.0])
    roc.log_confusion_matrix(["low", "high"], [[3, 1], [0, 4]])


@dsl.component
def report(model: Input[Model], page: Output[HTML], notes: Output[Markdown]):
    with open(model.path) as f:
        text = f.read()
    with open(page.path, "w") as f:
        f.write(f"<p>{text}</p>")
    with open(notes.path, "w") as f:
        f.write(f"# {text}")


@dsl.component
def shout_copy(src: InputPath("Model"), dst: OutputPath("Dataset"), size: OutputPath(int)):
    with open(src) as f:
        text = f.read()
    with open(dst, "w") as f:
        f.write(text.upper())
    with open(size, "w") as f:
        f.write(str(len(text)))


@dsl.pipeline(name="golden-artifacts")
def pipeline(rows: int = 5) -> NamedTuple(
    "Outputs",
    [
        ("model", Model),
        ("copy", Dataset),
        ("size", int),
        ("page", HTML),
        ("notes", Markdown),
        ("metrics", Metrics),
    ],
):
    data = make_data(rows=rows)
    trained = train(data=data.outputs["data"])
    rep = report(model=trained.outputs["model"])
    copied = shout_copy(src=trained.outputs["model"])
    outputs = NamedTuple(
        "Outputs",
        [
            ("model", Model),
            ("copy", Dataset),
            ("size", int),
            ("page", HTML),
            ("notes", Markdown),
            ("metrics", Metrics),
        ],
    )
    return outputs(
        model=trained.outputs["model"],
        copy=copied.outputs["dst"],
        size=copied.outputs["size"],
        page=rep.outputs["page"],
        notes=rep.outputs["notes"],
        metrics=trained.outputs["metrics"],
    )


ARGUMENTS = {"rows": 4}
EXPECTED_OUTPUTS = {
    "model.text": "mean=1.5",
    "copy.text": "MEAN=1.5",
    "size": 8,
    "page.text": "<p>mean=1.5</p>",
    "notes.text": "# mean=1.5",
}
