"""Pure builders of a training job's Kubernetes objects: TrainJob and PyTorchJob.

`TrainJob` (trainer.kubeflow.org/v1alpha1, Kubeflow Trainer v2) refers to a
ClusterTrainingRuntime (`torch-distributed` by default) that supplies the rest; the
`PyTorchJob` (kubeflow.org/v1) is for clusters that still run the training operator
v1. Both carry the training program inside the container command, as the Kubeflow
SDK does: a bash script writes it to a file (quoted heredoc, so nothing in it is
expanded) and runs it with `torchrun`, which reads the node layout from the PET_*
variables the controllers set. Arguments travel as JSON in environment variables.
No I/O here: the client's Kubernetes backend creates what these return.
"""

from __future__ import annotations

import copy
import hashlib
import re
import shlex
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.trainer import spec as specs

JOB_LABEL = "kubelab.io/job"
PATCH_MANAGER = "kubelab.io/kubelab"
SCRIPT_PATH = "/tmp/kubelab/train.py"
TRAINJOB_API = "trainer.kubeflow.org/v1alpha1"
PYTORCHJOB_API = "kubeflow.org/v1"
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def check_name(name: str) -> None:
    if not isinstance(name, str) or len(name) > 63 or not _NAME.match(name):
        raise KubelabError(
            f"job name {name!r} must be a DNS label: lower-case letters, digits and '-', "
            "starting with a letter, at most 63 characters",
            field="name",
        )


def command(spec: dict[str, Any]) -> list[str]:
    """`bash -c SCRIPT` that writes the program, installs packages, runs torchrun."""
    code = spec["source"]["code"]
    fence = "KUBELAB_EOF_" + hashlib.sha256(code.encode()).hexdigest()[:12]
    lines = [
        "set -e",
        f"mkdir -p {shlex.quote(SCRIPT_PATH.rsplit('/', 1)[0])}",
        f"cat > {SCRIPT_PATH} <<'{fence}'",
        code.rstrip("\n"),
        fence,
    ]
    if spec["packages_to_install"]:
        index = spec["pip_index_urls"]
        options = [f"--index-url {shlex.quote(index[0])}"] if index else []
        options += [f"--extra-index-url {shlex.quote(u)}" for u in index[1:]]
        packages = " ".join(shlex.quote(p) for p in spec["packages_to_install"])
        lines.append(
            "PIP_DISABLE_PIP_VERSION_CHECK=1 python -m pip install --quiet --user "
            f"{' '.join(options)} {packages}".replace("  ", " ")
        )
    lines.append(f'exec torchrun {SCRIPT_PATH} "$@"')
    return ["bash", "-c", "\n".join(lines) + "\n", "train", *specs.program_argv(spec)]


def env_list(spec: dict[str, Any]) -> list[dict[str, str]]:
    env = {"PYTHONUNBUFFERED": "1", **specs.program_env(spec)}
    return [{"name": k, "value": v} for k, v in env.items()]


def resources(spec: dict[str, Any], profile: dict[str, Any] | None) -> dict[str, Any] | None:
    """Requests equal to limits (what GPUs require), quantities as strings."""
    wanted = spec["resources_per_node"]
    if not wanted:
        return None
    gpu_key = ((profile or {}).get("gpu") or {}).get("resource") or "nvidia.com/gpu"
    quantities = {(gpu_key if k == "gpu" else k): str(v) for k, v in wanted.items()}
    return {"requests": dict(quantities), "limits": dict(quantities)}


def image_of(spec: dict[str, Any], cluster: Any) -> str | None:
    return spec.get("image") or cluster.image or ((cluster.profile or {}).get("image"))


def _labels(name: str, cluster: Any) -> dict[str, str]:
    return {**cluster.labels, JOB_LABEL: name}


def trainjob(spec: dict[str, Any], *, name: str, cluster: Any) -> dict[str, Any]:
    check_name(name)
    labels = _labels(name, cluster)
    trainer: dict[str, Any] = {
        "numNodes": spec["num_nodes"],
        "numProcPerNode": spec["nproc_per_node"],
        "command": command(spec),
        "env": env_list(spec),
    }
    image = image_of(spec, cluster)
    if image:
        trainer["image"] = image
    if res := resources(spec, cluster.profile):
        trainer["resourcesPerNode"] = res
    pod_labels = {"metadata": {"labels": dict(labels)}}
    return {
        "apiVersion": TRAINJOB_API,
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": cluster.namespace, "labels": labels},
        "spec": {
            "runtimeRef": {
                "apiGroup": "trainer.kubeflow.org",
                "kind": "ClusterTrainingRuntime",
                "name": spec["runtime"],
            },
            "trainer": trainer,
            # Our label on the pods too, so logs and events are found by one selector.
            "runtimePatches": [
                {
                    "manager": PATCH_MANAGER,
                    "trainingRuntimeSpec": {
                        "template": {
                            "spec": {
                                "replicatedJobs": [
                                    {
                                        "name": "node",
                                        "template": {"spec": {"template": pod_labels}},
                                    }
                                ]
                            }
                        }
                    },
                }
            ],
        },
    }


def pytorchjob(spec: dict[str, Any], *, name: str, cluster: Any) -> dict[str, Any]:
    check_name(name)
    image = image_of(spec, cluster)
    if not image:
        raise KubelabError(
            "a PyTorchJob needs an image: set image= (no notebook image is known)",
            field="image",
        )
    labels = _labels(name, cluster)
    container: dict[str, Any] = {
        "name": "pytorch",
        "image": image,
        "command": command(spec),
        "env": env_list(spec),
    }
    if res := resources(spec, cluster.profile):
        container["resources"] = res

    def replica(count: int) -> dict[str, Any]:
        return {
            "replicas": count,
            "restartPolicy": "Never",
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [copy.deepcopy(container)]},
            },
        }

    replicas = {"Master": replica(1)}
    if spec["num_nodes"] > 1:
        replicas["Worker"] = replica(spec["num_nodes"] - 1)
    return {
        "apiVersion": PYTORCHJOB_API,
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": cluster.namespace, "labels": labels},
        "spec": {
            "nprocPerNode": str(spec["nproc_per_node"]),
            "runPolicy": {"cleanPodPolicy": "None"},
            "pytorchReplicaSpecs": replicas,
        },
    }


def choose_api(spec: dict[str, Any], served: frozenset[tuple[str, str]] | None) -> str:
    """The spec's `api`, else what the cluster serves: TrainJob (Kubeflow Trainer v2)
    first, PyTorchJob (training operator v1) when only it is there. Without discovery
    (a dry run) TrainJob."""
    if spec.get("api"):
        return str(spec["api"])
    if served is None or (TRAINJOB_API, "TrainJob") in served:
        return "TrainJob"
    if (PYTORCHJOB_API, "PyTorchJob") in served:
        return "PyTorchJob"
    raise KubelabError(
        f"the cluster serves neither TrainJob ({TRAINJOB_API}) nor PyTorchJob "
        f"({PYTORCHJOB_API}): is Kubeflow Trainer installed? Run the job locally meanwhile",
        field="api",
    )


def build(spec: dict[str, Any], *, name: str, cluster: Any) -> list[dict[str, Any]]:
    """The objects of one training job: a TrainJob or a PyTorchJob (`choose_api`)."""
    specs.check_gpus_allowed(spec, cluster.profile)
    if choose_api(spec, cluster.served) == "PyTorchJob":
        return [pytorchjob(spec, name=name, cluster=cluster)]
    return [trainjob(spec, name=name, cluster=cluster)]
