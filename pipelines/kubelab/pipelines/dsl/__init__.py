"""The KFP v2 DSL, vendored: `from kubelab.pipelines import dsl` replaces `from kfp import dsl`.

`from kubelab.pipelines.dsl import *` is also what a component's module runs at
execution time, so `__all__` lists every name a component annotation may use.
"""

from kubelab.pipelines.dsl.artifact_types import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Markdown,
    Metrics,
    Model,
    SlicedClassificationMetrics,
    get_uri,
)
from kubelab.pipelines.dsl.base_component import BaseComponent
from kubelab.pipelines.dsl.container_component import (
    ContainerComponent,
    ContainerSpec,
    container_component,
)
from kubelab.pipelines.dsl.graph_component import GraphComponent
from kubelab.pipelines.dsl.importer_node import importer
from kubelab.pipelines.dsl.notebooks import notebook_component, run_notebook
from kubelab.pipelines.dsl.one_of import OneOf
from kubelab.pipelines.dsl.pipeline_channel import Collected, PipelineChannel
from kubelab.pipelines.dsl.pipeline_config import (
    KubernetesWorkspaceConfig,
    PipelineConfig,
    WorkspaceConfig,
)
from kubelab.pipelines.dsl.pipeline_context import pipeline
from kubelab.pipelines.dsl.pipeline_task import PipelineTask
from kubelab.pipelines.dsl.placeholders import (
    ConcatPlaceholder,
    IfPresentPlaceholder,
)
from kubelab.pipelines.dsl.python_component import PythonComponent, component
from kubelab.pipelines.dsl.task_final_status import PipelineTaskFinalStatus
from kubelab.pipelines.dsl.tasks_group import (
    Condition,
    Elif,
    Else,
    ExitHandler,
    If,
    ParallelFor,
)
from kubelab.pipelines.dsl.type_annotations import (
    EmbeddedInput,
    Input,
    InputPath,
    Output,
    OutputPath,
)

# Run-time values the backend substitutes into task arguments (KFP's names).
PIPELINE_JOB_NAME_PLACEHOLDER = "{{$.pipeline_job_name}}"
PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER = "{{$.pipeline_job_resource_name}}"
PIPELINE_JOB_ID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"
PIPELINE_TASK_NAME_PLACEHOLDER = "{{$.pipeline_task_name}}"
PIPELINE_TASK_ID_PLACEHOLDER = "{{$.pipeline_task_uuid}}"
PIPELINE_TASK_EXECUTOR_OUTPUT_PATH_PLACEHOLDER = "{{$.outputs.output_file}}"
PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"
PIPELINE_ROOT_PLACEHOLDER = "{{$.pipeline_root}}"
PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER = "{{$.pipeline_job_create_time_utc}}"
PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER = "{{$.pipeline_job_schedule_time_utc}}"
WORKSPACE_PATH_PLACEHOLDER = "{{$.workspace_path}}"

__all__ = [
    "HTML",
    "PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER",
    "PIPELINE_JOB_ID_PLACEHOLDER",
    "PIPELINE_JOB_NAME_PLACEHOLDER",
    "PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER",
    "PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER",
    "PIPELINE_ROOT_PLACEHOLDER",
    "PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER",
    "PIPELINE_TASK_EXECUTOR_OUTPUT_PATH_PLACEHOLDER",
    "PIPELINE_TASK_ID_PLACEHOLDER",
    "PIPELINE_TASK_NAME_PLACEHOLDER",
    "WORKSPACE_PATH_PLACEHOLDER",
    "Artifact",
    "BaseComponent",
    "ClassificationMetrics",
    "Collected",
    "ConcatPlaceholder",
    "Condition",
    "ContainerComponent",
    "ContainerSpec",
    "Dataset",
    "Elif",
    "Else",
    "EmbeddedInput",
    "ExitHandler",
    "GraphComponent",
    "If",
    "IfPresentPlaceholder",
    "Input",
    "InputPath",
    "KubernetesWorkspaceConfig",
    "Markdown",
    "Metrics",
    "Model",
    "OneOf",
    "Output",
    "OutputPath",
    "ParallelFor",
    "PipelineChannel",
    "PipelineConfig",
    "PipelineTask",
    "PipelineTaskFinalStatus",
    "PythonComponent",
    "SlicedClassificationMetrics",
    "WorkspaceConfig",
    "component",
    "container_component",
    "get_uri",
    "importer",
    "notebook_component",
    "pipeline",
    "run_notebook",
]
