"""`PipelineTaskFinalStatus`: what an exit task learns about the tasks it guards."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class PipelineTaskFinalStatus:
    """Final state of an ExitHandler's group, passed to the exit task at run time."""

    state: str
    pipeline_job_resource_name: str
    pipeline_task_name: str
    error_code: int | None
    error_message: str | None

    @classmethod
    def from_runtime(cls, value: dict[str, Any]) -> PipelineTaskFinalStatus:
        """Build from the JSON the backend passes (KFP's TaskFinalStatus shape)."""
        error = value.get("error") or {}
        return cls(
            state=value.get("state", ""),
            pipeline_job_resource_name=value.get("pipelineJobResourceName", ""),
            pipeline_task_name=value.get("pipelineTaskName", ""),
            error_code=error.get("code"),
            error_message=error.get("message"),
        )
