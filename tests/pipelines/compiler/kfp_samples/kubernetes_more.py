"""KFP sample: kfp-kubernetes settings with run-time names and the JSON forms,
compiled by kubelab and by kfp."""
# ruff: noqa: B006  -- ordinary KFP SDK code

from kubelab.pipelines import dsl, kubernetes


@dsl.component
def work(x: str = "") -> str:
    return x


@dsl.component
def secret_name() -> str:
    return "creds"


@dsl.pipeline
def pipeline(secret: str = "s", cm: str = "c", affinity: dict = {}, claim: str = "data"):
    name = secret_name()
    task = work()
    kubernetes.use_field_path_as_env(task, "POD_NAME", "metadata.name")
    kubernetes.use_secret_as_env(task, secret, {"user": "USER"})
    kubernetes.use_secret_as_volume(task, name.output, "/secrets", optional=True)
    kubernetes.use_config_map_as_volume(task, cm, "/config")
    kubernetes.add_node_affinity(
        task, match_expressions=[{"key": "zone", "operator": "In", "values": ["a"]}], weight=10
    )
    kubernetes.add_node_affinity_json(
        task,
        {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}]
            }
        },
    )
    kubernetes.add_toleration_json(task, [{"key": "k", "operator": "Exists"}])
    kubernetes.add_toleration(task)
    kubernetes.empty_dir_mount(task, "scratch", "/scratch", medium="Memory", size_limit="1Gi")
    kubernetes.add_ephemeral_volume(task, "eph", "/eph", ["ReadWriteOnce"], "1Gi")
    kubernetes.set_security_context(task, run_as_user=1000, run_as_non_root=True)
    kubernetes.set_image_pull_secrets(task, ["regcred", secret])
    kubernetes.mount_pvc(task, claim, "/data", sub_path="sub")
    other = work(x="y")
    kubernetes.add_node_selector_json(other, affinity)
    kubernetes.add_node_affinity_json(other, affinity)
    kubernetes.add_toleration_json(other, affinity)
    with dsl.ParallelFor(["a", "b"]) as item:
        inner = work(x=item)
        kubernetes.use_secret_as_env(inner, name.output, {"k": "K"})
        kubernetes.use_config_map_as_env(inner, cm, {"k": "C"})
        kubernetes.mount_pvc(inner, claim, "/data")
