"""`dsl.importer`: bring an existing file or object into a pipeline as an artifact."""

from __future__ import annotations

from typing import Any

from kubelab.pipelines.dsl import artifact_types, types
from kubelab.pipelines.dsl.base_component import BaseComponent
from kubelab.pipelines.dsl.pipeline_channel import PipelineChannel
from kubelab.pipelines.dsl.pipeline_context import Pipeline
from kubelab.pipelines.dsl.pipeline_task import PipelineTask
from kubelab.pipelines.errors import KubelabError

URI_INPUT = "uri"
OUTPUT_KEY = "artifact"


class ImporterComponent(BaseComponent):
    """The `importer` executor: no container, the backend registers the URI."""

    runs_in_container = False

    def __init__(
        self,
        artifact_class: type[artifact_types.Artifact],
        reimport: bool,
        metadata: dict[str, Any] | None,
        constant_uri: str | None,
    ) -> None:
        super().__init__(
            "importer",
            {URI_INPUT: types.IOSpec(URI_INPUT, parameter_type=types.STRING)},
            {OUTPUT_KEY: types.IOSpec(OUTPUT_KEY, artifact_class=artifact_class)},
        )
        self.artifact_class = artifact_class
        self.reimport = reimport
        self.metadata = metadata or {}
        self.constant_uri = constant_uri

    def executor_spec(self) -> dict[str, Any]:
        uri: dict[str, Any] = (
            {"constant": self.constant_uri}
            if self.constant_uri is not None
            else {"runtimeParameter": URI_INPUT}
        )
        spec: dict[str, Any] = {
            "artifactUri": uri,
            "typeSchema": types.artifact_type_schema(self.artifact_class),
        }
        if self.reimport:
            spec["reimport"] = True
        if self.metadata:
            spec["metadata"] = self.metadata
        return {"importer": spec}


def importer(
    artifact_uri: str | PipelineChannel,
    artifact_class: type[artifact_types.Artifact],
    reimport: bool = False,
    metadata: dict[str, Any] | None = None,
) -> PipelineTask:
    """Import `artifact_uri` as an artifact of `artifact_class`; output key 'artifact'."""
    if Pipeline.get_default_pipeline() is None:
        raise KubelabError("dsl.importer can only be used inside a @dsl.pipeline function.")
    if not artifact_types.is_artifact_class(artifact_class):
        raise KubelabError(
            f"dsl.importer: artifact_class must be an artifact class such as dsl.Dataset, "
            f"got {artifact_class!r}.",
            parameter="artifact_class",
        )
    if isinstance(artifact_uri, PipelineChannel):
        constant = None
    elif isinstance(artifact_uri, str) and artifact_uri:
        constant = artifact_uri
    else:
        raise KubelabError(
            f"dsl.importer: artifact_uri must be a non-empty string or a pipeline parameter, "
            f"got {artifact_uri!r}.",
            parameter="artifact_uri",
        )
    for key, value in (metadata or {}).items():
        if isinstance(value, PipelineChannel):
            raise KubelabError(
                f"dsl.importer: metadata value '{key}' must be a constant.",
                parameter="metadata",
            )
    component = ImporterComponent(artifact_class, bool(reimport), metadata, constant)
    return PipelineTask(component, {URI_INPUT: artifact_uri})
