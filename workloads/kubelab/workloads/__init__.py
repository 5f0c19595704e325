"""kubelab.workloads: training (`trainer`), tuning (`optimizer`) and serving (`serving`).

Each workload is a spec shaped like the Kubeflow SDK's, a local runner for the
embedded default, and pure builders of its Kubernetes objects (TrainJob/PyTorchJob,
Katib Experiment, KServe InferenceService).
"""

from kubelab.workloads.metrics import report

__all__ = ["report"]
