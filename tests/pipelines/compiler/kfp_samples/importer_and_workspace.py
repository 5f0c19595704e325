"""KFP sample: importer metadata from run-time values, download_to_workspace, a
pipeline workspace and a list of artifacts as a container argument, compiled by
kubelab and by kfp."""
# ruff: noqa: UP006, UP035  -- ordinary KFP SDK code

from typing import List

from kubelab.pipelines import dsl


@dsl.component
def tag() -> str:
    return "v1"


@dsl.component
def use(workspace: str, data: dsl.Input[dsl.Dataset]) -> str:
    return workspace


@dsl.container_component
def count(items: dsl.Input[List[dsl.Dataset]], out: dsl.Output[dsl.Artifact]):
    return dsl.ContainerSpec(image="python:3.11", command=["echo"], args=[items, out.uri])


@dsl.pipeline(
    pipeline_config=dsl.PipelineConfig(
        workspace=dsl.WorkspaceConfig(
            size="1Gi",
            kubernetes=dsl.KubernetesWorkspaceConfig(
                pvcSpecPatch={"accessModes": ["ReadWriteOnce"]}
            ),
        ),
        ttl_seconds_after_finished=3600,
    )
)
def pipeline(uri: str = "/tmp/data.csv", owner: str = "me", version: int = 1):
    version_tag = tag()
    imported = dsl.importer(
        artifact_uri=uri,
        artifact_class=dsl.Dataset,
        metadata={
            "owner": [owner, "team"],
            "release": f"release-{version_tag.output}",
            version_tag.output: version,
        },
        download_to_workspace=True,
    )
    use(workspace=dsl.WORKSPACE_PATH_PLACEHOLDER, data=imported.output)
    with dsl.ParallelFor([1, 2]):
        again = dsl.importer(artifact_uri="/tmp/data.csv", artifact_class=dsl.Dataset)
    count(items=dsl.Collected(again.output))
