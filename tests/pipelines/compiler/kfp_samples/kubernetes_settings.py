"""KFP sample: kfp-kubernetes settings → PlatformSpec, compiled by kubelab and by kfp."""

from kubelab.pipelines import dsl
from kubelab.pipelines.dsl import kubernetes


@dsl.component
def train(epochs: int = 1) -> int:
    return epochs


@dsl.pipeline
def pipeline():
    task = train().set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    kubernetes.add_node_selector(task, label_key="accelerator", label_value="a100")
    kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    kubernetes.add_toleration(
        task, key="k", operator="Equal", value="v", effect="NoExecute", toleration_seconds=30
    )
    kubernetes.use_secret_as_env(task, secret_name="creds", secret_key_to_env={"password": "PW"})
    kubernetes.use_secret_as_volume(task, secret_name="creds", mount_path="/secrets")
    kubernetes.use_config_map_as_env(task, config_map_name="cfg", config_map_key_to_env={"k": "K"})
    kubernetes.add_pod_label(task, "team", "ml")
    kubernetes.add_pod_annotation(task, "note", "hi")
    kubernetes.set_image_pull_policy(task, "Always")
    kubernetes.set_image_pull_secrets(task, ["regcred"])
    kubernetes.mount_pvc(task, pvc_name="data", mount_path="/data")
    kubernetes.set_timeout(task, 60)
    train(epochs=2)
