"""Golden: dsl.importer with a constant URI and with a pipeline-parameter URI."""

from pathlib import Path

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import Dataset, Input

DATA_FILE = str(Path(__file__).resolve().parent / "data" / "importer_input.txt")


@dsl.component
def read_text(data: Input[Dataset]) -> str:
    with open(data.path) as f:
        return f.read()


@dsl.component
def combine(a: str, b: str) -> str:
    return f"{a}|{b}"


@dsl.pipeline(name="golden-importer")
def pipeline(uri: str = DATA_FILE) -> str:
    constant = dsl.importer(
        artifact_uri=DATA_FILE, artifact_class=Dataset, reimport=False, metadata={"source": "repo"}
    )
    from_param = dsl.importer(artifact_uri=uri, artifact_class=Dataset, reimport=True)
    a = read_text(data=constant.output)
    b = read_text(data=from_param.outputs["artifact"])
    return combine(a=a.output, b=b.output).output


ARGUMENTS = {"uri": DATA_FILE}
EXPECTED_OUTPUTS = {"Output": "imported through dsl.importer|imported through dsl.importer"}
