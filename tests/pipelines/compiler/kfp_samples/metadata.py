"""KFP sample: descriptions from docstrings (artifacts too), defaults given at compile
time, and a display name cleaned up, compiled by kubelab and by kfp."""

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import Dataset, Input, Output

PIPELINE_PARAMETERS = {"rows": 5}


@dsl.component
def join(left: Input[Dataset], right: Input[Dataset], out: Output[Dataset]) -> str:
    """Joins two datasets.

    Args:
        left: The first dataset.
        right: The second dataset.

    Returns:
        out: The joined dataset.
        Output: A summary.
    """
    return ""


@dsl.component
def make(rows: int, data: Output[Dataset]):
    """Makes data.

    Args:
        rows: How many rows.
        data: The rows.
    """


@dsl.pipeline(name="Metadata Sample Pipeline")
def pipeline(rows: int, label: str = "x"):
    """Joins made data.

    Args:
        rows: Rows to make.
        label: A label.
    """
    a = make(rows=rows)
    b = make(rows=rows)
    join(left=a.outputs["data"], right=b.outputs["data"])
