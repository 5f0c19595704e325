"""`dsl.importer`: bring an existing file or object into a pipeline as an artifact."""

from __future__ import annotations

from typing import Any

from kubelab.pipelines.dsl import artifact_types, types
from kubelab.pipelines.dsl import placeholders as ph
from kubelab.pipelines.dsl.base_component import BaseComponent
from kubelab.pipelines.dsl.pipeline_channel import PipelineChannel
from kubelab.pipelines.dsl.pipeline_context import Pipeline
from kubelab.pipelines.dsl.pipeline_task import PipelineTask, formatted_channels
from kubelab.pipelines.errors import KubelabError

URI_INPUT = "uri"
OUTPUT_KEY = "artifact"


class ImporterComponent(BaseComponent):
    """The `importer` executor: no container, the backend registers the URI.

    Channels in `metadata` (values, keys, or formatted into strings) become inputs
    `metadata`, `metadata-2`, ... that the backend substitutes, as in KFP.
    """

    runs_in_container = False

    def __init__(
        self,
        artifact_class: type[artifact_types.Artifact],
        reimport: bool,
        metadata: dict[str, Any] | None,
        constant_uri: str | None,
        metadata_inputs: dict[str, PipelineChannel] | None = None,
        download_to_workspace: bool = False,
    ) -> None:
        inputs = {URI_INPUT: types.IOSpec(URI_INPUT, parameter_type=types.STRING)}
        for name, channel in (metadata_inputs or {}).items():
            inputs[name] = types.IOSpec(name, parameter_type=channel.parameter_type or types.STRING)
        super().__init__(
            "importer",
            inputs,
            {OUTPUT_KEY: types.IOSpec(OUTPUT_KEY, artifact_class=artifact_class)},
        )
        self.artifact_class = artifact_class
        self.reimport = reimport
        self.metadata = metadata or {}
        self.constant_uri = constant_uri
        self.download_to_workspace = download_to_workspace

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
        if self.download_to_workspace:
            spec["downloadToWorkspace"] = True
        return {"importer": spec}


def _metadata_with_inputs(
    metadata: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, PipelineChannel]]:
    """Metadata with its channels replaced by input placeholders, and those inputs."""
    inputs: dict[str, PipelineChannel] = {}

    def name_of(channel: PipelineChannel) -> str:
        for name, known in inputs.items():
            if known is channel:
                return name
        name = "metadata" if not inputs else f"metadata-{len(inputs) + 1}"
        inputs[name] = channel
        return name

    def walk(value: Any) -> Any:
        if isinstance(value, PipelineTask):
            value = value.output
        if isinstance(value, PipelineChannel):
            if value.is_artifact:
                raise KubelabError(
                    f"dsl.importer: metadata can hold parameters, not {value.describe()}.",
                    parameter="metadata",
                )
            return ph.InputValuePlaceholder(name_of(value)).render()
        if isinstance(value, str):
            for channel in formatted_channels(value, "dsl.importer metadata"):
                value = value.replace(
                    str(channel), ph.InputValuePlaceholder(name_of(channel)).render()
                )
            return value
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        return value

    return walk(metadata), inputs


def importer(
    artifact_uri: str | PipelineChannel,
    artifact_class: type[artifact_types.Artifact],
    reimport: bool = False,
    metadata: dict[str, Any] | None = None,
    download_to_workspace: bool = False,
) -> PipelineTask:
    """Import `artifact_uri` as an artifact of `artifact_class`; output key 'artifact'.

    `download_to_workspace=True` asks the backend to copy it into the pipeline's
    workspace (see `dsl.PipelineConfig`) for downstream tasks.
    """
    if Pipeline.get_default_pipeline() is None:
        raise KubelabError("dsl.importer can only be used inside a @dsl.pipeline function.")
    if not artifact_types.is_artifact_class(artifact_class):
        raise KubelabError(
            f"dsl.importer: artifact_class must be an artifact class such as dsl.Dataset, "
            f"got {artifact_class!r}.",
            parameter="artifact_class",
        )
    if isinstance(artifact_uri, PipelineTask):
        artifact_uri = artifact_uri.output
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
    resolved, metadata_inputs = _metadata_with_inputs(metadata or {})
    component = ImporterComponent(
        artifact_class,
        bool(reimport),
        resolved,
        constant,
        metadata_inputs,
        bool(download_to_workspace),
    )
    return PipelineTask(component, {URI_INPUT: artifact_uri, **metadata_inputs})
