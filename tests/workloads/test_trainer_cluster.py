"""Training jobs on a real Kubernetes API server, submitted as the notebook's own
ServiceAccount with the RBAC of deploy/kubernetes/rbac.yaml (`kubelab-notebook`).

The API server validates the TrainJob and PyTorchJob against their CRDs (server side);
nothing runs pods or operators, so each test says what Kubeflow Trainer, the training
operator, the scheduler and the kubelet do (helpers named `simulate_*`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from k8s import Cluster, Identity, wait_for
from k8s.cluster import load_yaml
from kubelab.client.cli.main import main as kubelab
from kubelab.pipelines.errors import ForbiddenError, KubelabError
from kubelab.workloads.trainer import CustomTrainer, KubernetesBackendConfig, TrainerClient
from kubelab.workloads.trainer.manifests import PYTORCHJOB_API, TRAINJOB_API

RBAC_YAML = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "rbac.yaml"
NOTEBOOK_IMAGE = "registry.example/kubelab/notebook:1.0"
CRD_API = "apiextensions.k8s.io/v1"
TRAINJOB_CRD = "trainjobs.trainer.kubeflow.org"
PYTORCHJOB_CRD = "pytorchjobs.kubeflow.org"


def ddp_sum(scale: float = 1.0) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    total = torch.tensor([dist.get_rank() + 1.0])
    dist.all_reduce(total)
    print(f"rank {dist.get_rank()} sum {total.item() * scale:g}", flush=True)


# -- the notebook user ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def notebook_role(k8s: Cluster) -> str:
    """The ClusterRoles of rbac.yaml that a notebook gets (aggregated as the controller
    manager would), and the cluster-wide read of training runtimes."""
    names = ("kubelab-notebook", "kubelab-training-runtimes-view")
    k8s.apply(*(d for d in load_yaml(RBAC_YAML) if d["metadata"]["name"].startswith(names)))
    k8s.simulate_clusterrole_aggregation()
    return "kubelab-notebook"


@pytest.fixture
def notebook(k8s: Cluster, k8s_user_namespace: str, notebook_role: str) -> Identity:
    """The namespace's `default` ServiceAccount (the notebook pod's) bound to the role."""
    return k8s.service_account(k8s_user_namespace, "default", cluster_role=notebook_role)


@pytest.fixture
def cluster_trainer(
    notebook: Identity, k8s_user_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> TrainerClient:
    monkeypatch.setenv("JUPYTER_IMAGE_SPEC", NOTEBOOK_IMAGE)  # as KubeSpawner sets it
    return client_for(notebook, k8s_user_namespace)


def client_for(identity: Identity, namespace: str, api: str | None = None) -> TrainerClient:
    config = KubernetesBackendConfig(
        namespace=namespace, config_file=str(identity.kubeconfig), api=api
    )
    return TrainerClient(config)


# -- what the operators, the scheduler and the kubelet do -----------------------------------


def simulate_trainjob_pods(k8s: Cluster, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Kubeflow Trainer's JobSet creates one pod per node: the runtime's `node` container
    with the TrainJob's command, env and resources, the JobSet's labels and those of
    the TrainJob's runtime patch."""
    name, trainer = job["metadata"]["name"], job["spec"]["trainer"]
    patch = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
    labels = patch["replicatedJobs"][0]["template"]["spec"]["template"]["metadata"]["labels"]
    container = {
        "name": "node",
        "image": trainer.get("image", "pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime"),
        "command": trainer["command"],
        "env": trainer["env"],
        **({"resources": trainer["resourcesPerNode"]} if "resourcesPerNode" in trainer else {}),
    }
    return [
        k8s.create(
            pod(
                job,
                f"{name}-node-0-{index}-{uuid.uuid4().hex[:5]}",
                {
                    **labels,
                    "jobset.sigs.k8s.io/jobset-name": name,
                    "jobset.sigs.k8s.io/replicatedjob-name": "node",
                    "batch.kubernetes.io/job-completion-index": str(index),
                },
                container,
            )
        )
        for index in range(trainer["numNodes"])
    ]


def simulate_pytorchjob_pods(k8s: Cluster, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The training operator creates a pod per replica from its template, labelled with
    the replica type and index."""
    name, created = job["metadata"]["name"], []
    for kind, replica in job["spec"]["pytorchReplicaSpecs"].items():
        template = replica["template"]
        for index in range(replica["replicas"]):
            labels = {
                **template["metadata"]["labels"],
                "training.kubeflow.org/job-name": name,
                "training.kubeflow.org/replica-type": kind.lower(),
                "training.kubeflow.org/replica-index": str(index),
            }
            [container] = template["spec"]["containers"]
            created.append(
                k8s.create(pod(job, f"{name}-{kind.lower()}-{index}", labels, container))
            )
    return created


def pod(job: dict[str, Any], name: str, labels: dict[str, str], container: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": job["metadata"]["namespace"], "labels": labels},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }


def simulate_warning_event(k8s: Cluster, obj: dict[str, Any], reason: str, message: str) -> None:
    """A component (the kubelet, the scheduler) records a Warning event on an object."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    k8s.core.create_namespaced_event(
        namespace,
        {
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:8]}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": name,
                "namespace": namespace,
                "uid": obj["metadata"]["uid"],
            },
            "type": "Warning",
            "reason": reason,
            "message": message,
            "source": {"component": "kubelet"},
        },
    )


@contextmanager
def crds_not_served(k8s: Cluster, *names: str) -> Iterator[None]:
    """A cluster without these operators: their CRDs stop being served (their objects
    stay in etcd) until the block ends. Only on envtest, never on a real Kubeflow."""
    if not k8s.simulated:
        pytest.skip("hides CRDs of the cluster: only on the test API server")
    crds = k8s.resource(CRD_API, "CustomResourceDefinition")

    def serve(name: str, served: bool) -> None:
        patch = [{"op": "replace", "path": "/spec/versions/0/served", "value": served}]
        crds.patch(body=patch, name=name, content_type="application/json-patch+json")

    def discovered(name: str) -> bool:
        crd = k8s.get(CRD_API, "CustomResourceDefinition", name)
        path = f"/apis/{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}"
        try:
            answer = k8s.dynamic.request("get", path, serialize=False)
        except Exception:
            return False
        plural = crd["spec"]["names"]["plural"]
        return plural in {r["name"] for r in json.loads(answer.data)["resources"]}

    for name in names:
        serve(name, False)
        wait_for(lambda name=name: not discovered(name), f"{name} still served")
    try:
        yield
    finally:
        for name in names:
            serve(name, True)
            wait_for(lambda name=name: discovered(name), f"{name} not served again")
        k8s.dynamic.resources.invalidate_cache()


# -- tests ----------------------------------------------------------------------------------


def test_a_trainjob_from_the_notebook_runs_to_completion(
    k8s: Cluster, k8s_user_namespace: str, cluster_trainer: TrainerClient
) -> None:
    trainer = CustomTrainer(
        func=ddp_sum,
        func_args={"scale": 2.0},
        num_nodes=2,
        resources_per_node={"cpu": "2", "memory": "4Gi"},
    )
    name = cluster_trainer.train(trainer=trainer)

    stored = k8s.get(TRAINJOB_API, "TrainJob", name, k8s_user_namespace)  # the server took it
    assert stored["spec"]["runtimeRef"]["name"] == "torch-distributed"
    spec = stored["spec"]["trainer"]
    assert spec["numNodes"] == 2 and spec["image"] == NOTEBOOK_IMAGE
    assert spec["resourcesPerNode"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert "def ddp_sum" in spec["command"][2]
    assert {"name": "KUBELAB_FUNC_ARGS", "value": '{"scale": 2.0}'} in spec["env"]
    job = cluster_trainer.get_job(name)
    assert job.status == "Created" and job.backend == "kubernetes"
    assert [(s.name, s.status) for s in job.steps] == [("node-0", "Created"), ("node-1", "Created")]

    pods = simulate_trainjob_pods(k8s, stored)
    # Not yet on a node: no log, and no error either.
    assert list(cluster_trainer.get_job_logs(name, step="node-1")) == []
    for each in pods:
        k8s.simulate_kubelet_ready(each)
    job = cluster_trainer.get_job(name)
    assert job.status == "Running"
    assert [(s.name, s.status, s.device, s.device_count) for s in job.steps] == [
        ("node-0", "Running", "cpu", "2"),
        ("node-1", "Running", "cpu", "2"),
    ]
    assert [s.pod_name for s in job.steps] == [p["metadata"]["name"] for p in pods]

    # Without a kubelet the API server cannot serve pod logs: kubelab says so.
    with pytest.raises(KubelabError) as unavailable:
        list(cluster_trainer.get_job_logs(name, step="node-1"))
    assert unavailable.value.message.startswith(
        f"the log of node-1 (pod {pods[1]['metadata']['name']}) cannot be read now: the "
        "Kubernetes API server could not get it from the kubelet of node kubelab-test-node ("
    )

    for each in pods:
        k8s.simulate_container_terminated(each, 0)
    k8s.simulate_condition(stored, "Complete", "True", "JobSetCompleted", "jobset completed")
    job = cluster_trainer.wait_for_job_status(name, timeout=30, polling_interval=0.2)
    assert job.status == "Complete" and job.error is None
    assert all(s.status == "Complete" and s.duration_s is not None for s in job.steps)
    assert [j.name for j in cluster_trainer.list_jobs()] == [name]

    cluster_trainer.delete_job(name)
    assert k8s.get(TRAINJOB_API, "TrainJob", name, k8s_user_namespace) is None
    assert cluster_trainer.list_jobs() == []


def test_a_failure_and_the_pods_warnings_reach_get_job(
    k8s: Cluster, k8s_user_namespace: str, cluster_trainer: TrainerClient
) -> None:
    name = cluster_trainer.train(trainer=CustomTrainer(func=ddp_sum, num_nodes=2))
    stored = k8s.get(TRAINJOB_API, "TrainJob", name, k8s_user_namespace)
    pods = simulate_trainjob_pods(k8s, stored)
    for each in pods:
        k8s.simulate_kubelet_ready(each)
    k8s.simulate_container_terminated(pods[1], 137)
    simulate_warning_event(k8s, pods[1], "Evicted", "The node was low on resource: memory.")
    k8s.simulate_condition(
        stored, "Failed", "True", "JobSetFailed", "jobset failed: node job has failed"
    )
    with pytest.raises(RuntimeError, match="is Failed: JobSetFailed: jobset failed"):
        cluster_trainer.wait_for_job_status(name, timeout=30, polling_interval=0.2)
    job = cluster_trainer.get_job(name)
    assert job.status == "Failed"
    assert job.error.startswith("JobSetFailed: jobset failed: node job has failed")
    assert "Evicted: The node was low on resource: memory." in job.error
    node = {s.name: s for s in job.steps}["node-1"]
    assert node.status == "Failed" and "Evicted" in node.error
    events = cluster_trainer.get_job_events(name)
    assert [(e.involved_object_name, e.reason) for e in events] == [
        (pods[1]["metadata"]["name"], "Evicted")
    ]


def test_a_pytorchjob_on_request_with_its_conditions(
    k8s: Cluster, k8s_user_namespace: str, notebook: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_IMAGE_SPEC", NOTEBOOK_IMAGE)
    client = client_for(notebook, k8s_user_namespace, api="PyTorchJob")
    name = client.train(trainer=CustomTrainer(func=ddp_sum, num_nodes=3))
    stored = k8s.get(PYTORCHJOB_API, "PyTorchJob", name, k8s_user_namespace)
    replicas = stored["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 2
    assert replicas["Worker"]["template"]["spec"]["containers"][0]["image"] == NOTEBOOK_IMAGE

    k8s.simulate_condition(stored, "Created", "True", "PyTorchJobCreated", "created")
    assert client.get_job(name).status == "Created"
    pods = simulate_pytorchjob_pods(k8s, stored)
    for each in pods:
        k8s.simulate_kubelet_ready(each)
    k8s.simulate_condition(stored, "Running", "True", "PyTorchJobRunning", "running")
    job = client.get_job(name)
    assert job.status == "Running"
    assert {s.name: s.pod_name for s in job.steps} == {
        "node-0": f"{name}-master-0",
        "node-1": f"{name}-worker-0",
        "node-2": f"{name}-worker-1",
    }
    for each in pods:
        k8s.simulate_container_terminated(each, 0)
    k8s.simulate_condition(stored, "Succeeded", "True", "PyTorchJobSucceeded", "succeeded")
    assert client.wait_for_job_status(name, timeout=30, polling_interval=0.2).status == "Complete"
    client.delete_job(name)
    assert k8s.get(PYTORCHJOB_API, "PyTorchJob", name, k8s_user_namespace) is None


def test_discovery_picks_what_the_cluster_serves(
    k8s: Cluster, k8s_user_namespace: str, cluster_trainer: TrainerClient, notebook: Identity
) -> None:
    func = CustomTrainer(func=ddp_sum)
    assert [r.name for r in cluster_trainer.list_runtimes()] == ["torch-distributed"]
    runtime = cluster_trainer.get_runtime("torch-distributed")
    assert (runtime.trainer.framework, runtime.trainer.num_nodes) == ("torch", 1)

    with crds_not_served(k8s, TRAINJOB_CRD):  # a cluster with the v1 training operator only
        old = cluster_trainer.train(trainer=func)
        assert k8s.get(PYTORCHJOB_API, "PyTorchJob", old, k8s_user_namespace) is not None
        assert cluster_trainer.get_job(old).status == "Created"
        asked = client_for(notebook, k8s_user_namespace, api="TrainJob")  # an explicit choice
        with pytest.raises(KubelabError, match=r"does not serve TrainJob \(trainer\.kubeflow"):
            asked.train(trainer=func)

    with crds_not_served(k8s, PYTORCHJOB_CRD):  # Kubeflow Trainer v2 only
        new = cluster_trainer.train(trainer=func)
        assert k8s.get(TRAINJOB_API, "TrainJob", new, k8s_user_namespace) is not None
        asked = client_for(notebook, k8s_user_namespace, api="PyTorchJob")
        with pytest.raises(KubelabError, match=r"does not serve PyTorchJob \(kubeflow\.org/v1\)"):
            asked.train(trainer=func)

    neither = pytest.raises(KubelabError, match=r"serves neither TrainJob .* nor PyTorchJob")
    with crds_not_served(k8s, TRAINJOB_CRD, PYTORCHJOB_CRD), neither:
        cluster_trainer.train(trainer=func)

    # Refused jobs left no record; the two that went in are one of each kind.
    jobs = cluster_trainer.client.list_jobs("training")
    assert {j["id"]: j["outputs"]["objects"][0]["kind"] for j in jobs} == {
        old: "PyTorchJob",
        new: "TrainJob",
    }


def test_the_notebook_cannot_reach_other_namespaces(
    k8s: Cluster, k8s_user_namespace: str, notebook: Identity
) -> None:
    other = k8s.create_namespace("someone-else")
    try:
        intruder = client_for(notebook, other)
        with pytest.raises(ForbiddenError, match='cannot create resource "trainjobs"'):
            intruder.train(trainer=CustomTrainer(func=ddp_sum))
        assert intruder.list_jobs() == []
    finally:
        k8s.delete_namespace(other)
    assert k8s.can(
        notebook.username, "create", "trainjobs", k8s_user_namespace, group=TRAINER_GROUP
    )
    for verb, resource, group in (
        ("create", "pods", ""),  # jobs make pods through their operator, never directly
        ("get", "secrets", ""),
        ("update", "trainjobs", TRAINER_GROUP),
        ("create", "rolebindings", "rbac.authorization.k8s.io"),
    ):
        assert not k8s.can(notebook.username, verb, resource, k8s_user_namespace, group=group)


TRAINER_GROUP = "trainer.kubeflow.org"


def test_cli_logs_of_a_cluster_job_say_why_there_is_none(
    k8s: Cluster,
    k8s_user_namespace: str,
    cluster_trainer: TrainerClient,
    notebook: Identity,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = cluster_trainer.train(trainer=CustomTrainer(func=ddp_sum))
    [node] = simulate_trainjob_pods(
        k8s, k8s.get(TRAINJOB_API, "TrainJob", name, k8s_user_namespace)
    )
    k8s.simulate_kubelet_ready(node)
    monkeypatch.setenv("KUBECONFIG", str(notebook.kubeconfig))  # what `kubelab` would read
    capsys.readouterr()
    assert kubelab(["jobs", "show", name]) == 0
    assert f"training {name}  {name}  running  (kubernetes)" in capsys.readouterr().out
    assert kubelab(["jobs", "logs", name, "--step", "node-0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kubelab: error: the log of node-0 (pod ")
    assert "could not get it from the kubelet of node kubelab-test-node" in error
