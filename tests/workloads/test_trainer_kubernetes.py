"""TrainJob and PyTorchJob manifests against the real CRD schemas, the embedded program
under a real torchrun, and the job state read back from conditions, pods and events."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from trainer_helpers import function_spec

from k8s import CRDS_DIR
from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.base import ClusterContext
from kubelab.workloads.trainer import manifests
from kubelab.workloads.trainer.local import free_port
from kubelab.workloads.trainer.workload import TrainingWorkload

CRDS = CRDS_DIR  # the real CRDs, kept with the test API server


def crd_schema(filename: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / filename).read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def ddp_sum(scale: float = 1.0) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    total = torch.tensor([dist.get_rank() + 1.0])
    dist.all_reduce(total)
    print(f"rank {dist.get_rank()} sum {total.item() * scale:g}", flush=True)
    dist.destroy_process_group()


CLUSTER = ClusterContext(
    namespace="alice",
    image="registry.example/kubelab/notebook:1.0",
    profile={"slug": "gpu", "image": "x", "gpu": {"count": 2, "resource": "nvidia.com/gpu"}},
    labels={"app.kubernetes.io/managed-by": "kubelab"},
)


def spec_of(**fields: Any) -> dict[str, Any]:
    raw = function_spec(ddp_sum, func_args={"scale": 2.0}, num_nodes=2, nproc_per_node=2)
    raw.update(fields)
    return TrainingWorkload().validate(raw)


def test_trainjob_validates_against_the_crd_and_carries_the_program() -> None:
    spec = spec_of(resources_per_node={"gpu": 1, "cpu": "2", "memory": "4Gi"}, env={"A": "b"})
    [job] = TrainingWorkload().manifests(spec, name="train-demo", cluster=CLUSTER)
    jsonschema.validate(job, crd_schema("trainer.kubeflow.org_trainjobs.yaml"))
    assert job["kind"] == "TrainJob" and job["metadata"]["namespace"] == "alice"
    assert job["spec"]["runtimeRef"]["name"] == "torch-distributed"
    trainer = job["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["numProcPerNode"] == 2
    assert trainer["image"] == CLUSTER.image  # the notebook's own image by default
    limits = trainer["resourcesPerNode"]
    assert (
        limits["limits"]
        == limits["requests"]
        == {"nvidia.com/gpu": "1", "cpu": "2", "memory": "4Gi"}
    )
    env = {e["name"]: e["value"] for e in trainer["env"]}
    assert env["A"] == "b" and env["KUBELAB_FUNC_ARGS"] == '{"scale": 2.0}'
    assert trainer["command"][:2] == ["bash", "-c"] and "def ddp_sum" in trainer["command"][2]
    # The pods carry kubelab's label, so logs and events are found by pod_selector().
    patch = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
    pod_meta = patch["replicatedJobs"][0]["template"]["spec"]["template"]["metadata"]
    assert TrainingWorkload().pod_selector("train-demo") == "kubelab.io/job=train-demo"
    assert pod_meta["labels"]["kubelab.io/job"] == "train-demo"


def test_pytorchjob_validates_against_the_crd() -> None:
    [job] = TrainingWorkload().manifests(
        spec_of(api="PyTorchJob", resources_per_node={"gpu": 2}), name="train-old", cluster=CLUSTER
    )
    jsonschema.validate(job, crd_schema("kubeflow.org_pytorchjobs.yaml"))
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 1
    container = replicas["Worker"]["template"]["spec"]["containers"][0]
    assert container["name"] == "pytorch" and container["image"] == CLUSTER.image
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert job["spec"]["nprocPerNode"] == "2"
    assert replicas["Master"]["template"]["metadata"]["labels"]["kubelab.io/job"] == "train-old"


def test_bad_cluster_requests_are_refused_with_the_field() -> None:
    workload = TrainingWorkload()
    with pytest.raises(KubelabError, match="allows 2") as error:
        workload.manifests(spec_of(resources_per_node={"gpu": 3}), name="x", cluster=CLUSTER)
    assert error.value.details["field"] == "resources_per_node.gpu"
    with pytest.raises(KubelabError, match="DNS label"):
        workload.manifests(spec_of(), name="Train_1", cluster=CLUSTER)
    bare = ClusterContext(namespace="alice")
    with pytest.raises(KubelabError, match="needs an image"):
        workload.manifests(spec_of(api="PyTorchJob"), name="x", cluster=bare)
    [job] = workload.manifests(spec_of(), name="x", cluster=bare)
    assert "image" not in job["spec"]["trainer"]  # the runtime's image then


def test_the_embedded_program_runs_under_torchrun(tmp_path: Path) -> None:
    """The container command, run here with torchrun's env contract as the runtime sets it."""
    [job] = TrainingWorkload().manifests(
        spec_of(num_nodes=1), name="train-here", cluster=ClusterContext(namespace="a")
    )
    trainer = job["spec"]["trainer"]
    env = {
        **os.environ,
        **{e["name"]: e["value"] for e in trainer["env"]},
        "PET_NNODES": "1",
        "PET_NPROC_PER_NODE": "2",
        "PET_NODE_RANK": "0",
        "PET_MASTER_ADDR": "127.0.0.1",
        "PET_MASTER_PORT": str(free_port()),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    script = trainer["command"][2].replace(manifests.SCRIPT_PATH, str(tmp_path / "train.py"))
    script = script.replace("mkdir -p /tmp/kubelab", f"mkdir -p {tmp_path}")
    done = subprocess.run(
        ["bash", "-c", script, "train"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0 sum 6" in done.stdout and "rank 1 sum 6" in done.stdout  # (1+2) x scale 2


def trainjob_object(conditions: list[dict[str, str]], **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": manifests.TRAINJOB_API,
        "kind": "TrainJob",
        "metadata": {"name": "train-demo"},
        "spec": {"trainer": {"numNodes": 2}},
        "status": {"conditions": conditions, **status},
    }


def node_pod(index: int, phase: str, **container_state: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if container_state:
        status["containerStatuses"] = [{"name": "node", "state": container_state}]
    return {
        "metadata": {
            "name": f"train-demo-node-0-{index}",
            "labels": {
                "jobset.sigs.k8s.io/replicatedjob-name": "node",
                "batch.kubernetes.io/job-completion-index": str(index),
            },
        },
        "spec": {
            "containers": [{"name": "node", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]
        },
        "status": status,
    }


def test_trainjob_state_from_conditions_pods_and_events() -> None:
    state = TrainingWorkload().cluster_state
    created = state([trainjob_object([])], [], [])
    assert created["state"] == "pending" and set(created["steps"]) == {"node-0", "node-1"}
    running = state([trainjob_object([])], [node_pod(0, "Running"), node_pod(1, "Running")], [])
    assert running["state"] == "running"
    assert running["steps"]["node-1"] == {
        "state": "running",
        "message": None,
        "pod": "train-demo-node-0-1",
        "container": "node",
        "node": None,
        "device": "gpu",
        "device_count": "1",
    }
    complete = state(
        [
            trainjob_object(
                [
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "JobSetCompleted",
                        "message": "done",
                    }
                ],
                trainerStatus={
                    "metrics": [{"name": "loss", "value": "0.125"}],
                    "lastUpdatedTime": "t",
                },
            )
        ],
        [node_pod(0, "Succeeded"), node_pod(1, "Succeeded")],
        [],
    )
    assert complete["state"] == "succeeded" and complete["metrics"] == {"loss": 0.125}
    failed = state(
        [
            trainjob_object(
                [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "JobSetFailed",
                        "message": "node-1 exited",
                    }
                ]
            )
        ],
        [
            node_pod(0, "Failed"),
            node_pod(1, "Failed", terminated={"exitCode": 1, "reason": "Error"}),
        ],
        [],
    )
    assert failed["state"] == "failed" and failed["message"].startswith(
        "JobSetFailed: node-1 exited"
    )
    assert failed["steps"]["node-1"]["message"] == "Error"


def test_failures_that_only_events_tell_reach_the_message() -> None:
    state = TrainingWorkload().cluster_state
    pull = state(
        [trainjob_object([])],
        [
            node_pod(
                0, "Pending", waiting={"reason": "ImagePullBackOff", "message": "no such image"}
            )
        ],
        [
            {
                "type": "Warning",
                "reason": "FailedScheduling",
                "message": "0/3 nodes have enough nvidia.com/gpu",
                "involvedObject": {"kind": "Pod", "name": "train-demo-node-0-1"},
            },
            {
                "type": "Warning",
                "reason": "FailedCreate",
                "message": "quota exceeded",
                "involvedObject": {"kind": "TrainJob", "name": "train-demo"},
            },
        ],
    )
    assert pull["state"] == "failed"
    assert pull["message"].startswith("node-0: ImagePullBackOff: no such image")
    assert "FailedCreate: quota exceeded" in pull["message"]


def test_pytorchjob_state_and_node_names() -> None:
    job = {
        "kind": "PyTorchJob",
        "metadata": {"name": "old"},
        "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1}, "Worker": {"replicas": 2}}},
        "status": {
            "conditions": [
                {"type": "Created", "status": "True"},
                {"type": "Running", "status": "True"},
            ]
        },
    }

    def pod(kind: str, index: int) -> dict[str, Any]:
        return {
            "metadata": {
                "name": f"old-{kind}-{index}",
                "labels": {
                    "training.kubeflow.org/replica-type": kind,
                    "training.kubeflow.org/replica-index": str(index),
                },
            },
            "spec": {"containers": [{"name": "pytorch"}]},
            "status": {"phase": "Running"},
        }

    result = TrainingWorkload().cluster_state(
        [job], [pod("master", 0), pod("worker", 0), pod("worker", 1)], []
    )
    assert result["state"] == "running"
    assert {n: s["pod"] for n, s in result["steps"].items()} == {
        "node-0": "old-master-0",
        "node-1": "old-worker-0",
        "node-2": "old-worker-1",
    }
    job["status"]["conditions"].append(
        {
            "type": "Failed",
            "status": "True",
            "reason": "PyTorchJobFailed",
            "message": "worker 1 failed",
        }
    )
    assert (
        TrainingWorkload().cluster_state([job], [], [])["message"]
        == "PyTorchJobFailed: worker 1 failed"
    )


def test_cli_dry_run_prints_manifests_the_crds_accept(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "train_ddp.ipynb"
    (tmp_path / "train_ddp.ipynb").write_bytes(example.read_bytes())
    base = [sys.executable, "-m", "kubelab.client.cli", "train", "train_ddp.ipynb"]
    flags = ["--nodes", "2", "--gpus-per-node", "1", "-p", "epochs=2", "--dry-run"]
    for api, crd in (
        ("TrainJob", "trainer.kubeflow.org_trainjobs.yaml"),
        ("PyTorchJob", "kubeflow.org_pytorchjobs.yaml"),
    ):
        done = subprocess.run(
            [*base, *flags, "-o", "yaml", "--api", api, "--image", "img:1"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        [obj] = list(yaml.safe_load_all(done.stdout))
        jsonschema.validate(obj, crd_schema(crd))
        assert obj["kind"] == api and obj["metadata"]["name"] == "train-ddp"
        assert '{"epochs": 2}' in done.stdout
    bad = subprocess.run(
        [*base, "--nodes", "0", "--dry-run"], cwd=tmp_path, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "num_nodes must be between 1 and 64" in bad.stderr
