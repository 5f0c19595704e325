"""KubelabSpawner: pod manifests for every example profile, as an API server demands them."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import kubernetes.client
import pytest
from kubernetes_asyncio.client import ApiClient as AsyncApiClient
from tornado import web

from kubelab.spawner import KubelabSpawner, load_profiles

from .conftest import EXAMPLE_PROFILES

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
ALICE_GROUPS = ["gpu-users", "data-science"]


def to_model(manifest: Any, kind: str) -> tuple[dict[str, Any], Any]:
    """Serialise as KubeSpawner would send it, then load into the official client model."""
    data = AsyncApiClient().sanitize_for_serialization(manifest)
    model = kubernetes.client.ApiClient().deserialize(json.dumps(data), kind, "application/json")
    return data, model


async def pod_for(make_user: Any, profile: str, image: str | None = None, **traits: Any) -> Any:
    user = make_user("Alice.Smith@example.com", ALICE_GROUPS, KubelabSpawner, **traits)
    spawner = user.spawner
    spawner.user_options = {"profile": profile, **({"image": image} if image else {})}
    await spawner.apply_user_options(spawner, spawner.user_options)
    await spawner.load_user_options()
    return spawner, await spawner.get_pod_manifest()


@pytest.mark.asyncio
@pytest.mark.parametrize("slug", [p.slug for p in load_profiles(EXAMPLE_PROFILES).profiles])
async def test_pod_manifest_for_every_example_profile(make_user: Any, slug: str) -> None:
    config = load_profiles(EXAMPLE_PROFILES)
    profile = config.profile(slug)
    spawner, pod = await pod_for(make_user, slug)
    data, model = to_model(pod, "V1Pod")
    assert isinstance(model, kubernetes.client.V1Pod)

    # names the API server validates
    assert DNS1123_LABEL.match(spawner.namespace)
    assert spawner.namespace.startswith("kubelab-alice-smith")
    assert DNS1123_SUBDOMAIN.match(data["metadata"]["name"])
    assert DNS1123_LABEL.match(spawner.pvc_name)
    labels = data["metadata"]["labels"]
    assert all(LABEL_VALUE.match(v) for v in labels.values()), labels
    assert labels["kubelab.io/profile"] == slug
    assert labels["kubelab.io/user"] == "Alice.Smith-example.com"
    assert data["metadata"]["annotations"]["kubelab.io/username"] == "Alice.Smith@example.com"

    container = data["spec"]["containers"][0]
    assert container["image"] == config.images_for(profile)[0].image
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    for quantities in (limits, requests):
        assert all(isinstance(v, str) and QUANTITY.match(v) for v in quantities.values())
    assert limits["cpu"] == profile.cpu_limit and limits["memory"] == profile.memory_limit
    assert requests["cpu"] == profile.cpu_guarantee
    assert requests["memory"] == profile.memory_guarantee
    if profile.gpu_count:
        assert limits[profile.gpu_resource] == requests[profile.gpu_resource] == "1"
        assert data["spec"]["nodeSelector"] == profile.node_selector
        assert data["spec"]["tolerations"] == profile.tolerations
        model_tolerations = model.spec.tolerations
        assert model_tolerations[0].operator == "Exists"
    else:
        assert not any("gpu" in key or "mig" in key for key in limits)

    # home on the per-user PVC; tokens and identity mounted as files, not env values
    volumes = {v["name"]: v for v in data["spec"]["volumes"]}
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == spawner.pvc_name
    assert volumes["kubelab-oidc-tokens"]["secret"]["secretName"] == spawner.token_secret_name
    assert volumes["kubelab-oidc-tokens"]["secret"]["defaultMode"] == 0o400
    assert volumes["kubelab-identity"]["configMap"]["name"] == spawner.identity_configmap_name
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["kubelab-oidc-tokens"]["mountPath"] == "/var/run/secrets/kubelab/oidc"
    assert "subPath" not in mounts["kubelab-oidc-tokens"]  # so Secret updates propagate
    # Kubeflow Pipelines: a projected ServiceAccount token for KFP's TokenReview
    kfp = volumes.get("kubeflow-pipelines-token")
    if profile.kubeflow_pipelines:
        (source,) = kfp["projected"]["sources"]
        assert source["serviceAccountToken"] == {
            "audience": "pipelines.kubeflow.org",
            "expirationSeconds": 7200,
            "path": "token",
        }
        mount = mounts["kubeflow-pipelines-token"]
        assert mount == {
            "name": "kubeflow-pipelines-token",
            "mountPath": "/var/run/secrets/kubeflow/pipelines",  # kfp.Client's default path
            "readOnly": True,
        }
        assert model.spec.volumes[-1].projected.sources[0].service_account_token.audience
    else:
        assert kfp is None and "kubeflow-pipelines-token" not in mounts
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KUBELAB_IDENTITY_FILE"] == "/etc/kubelab/identity/identity.json"
    assert env["KUBELAB_PROFILE"] == slug
    assert not any("ACCESS_TOKEN" in k or "ID_TOKEN" in k for k in env)


@pytest.mark.asyncio
async def test_image_choice_and_pvc_manifest(make_user: Any) -> None:
    spawner, pod = await pod_for(make_user, "gpu-1", "pytorch")
    assert pod.spec.containers[0].image == "quay.io/jupyter/pytorch-notebook:2025-03-14"
    pvc_data, pvc = to_model(spawner.get_pvc_manifest(), "V1PersistentVolumeClaim")
    assert pvc.spec.resources.requests["storage"] == "10Gi"
    assert DNS1123_LABEL.match(pvc_data["metadata"]["name"])


@pytest.mark.asyncio
async def test_identity_secret_and_configmap(make_user: Any) -> None:
    spawner, _ = await pod_for(make_user, "gpu-1")
    secret, configmap = await spawner.get_identity_objects(
        {"access_token": "at-123", "id_token": "it-456"}
    )
    secret_data, secret_model = to_model(secret, "V1Secret")
    assert secret_model.metadata.namespace == spawner.namespace
    assert DNS1123_SUBDOMAIN.match(secret_model.metadata.name)
    assert base64.b64decode(secret_data["data"]["access_token"]) == b"at-123"
    cm_data, _ = to_model(configmap, "V1ConfigMap")
    identity = json.loads(cm_data["data"]["identity.json"])
    assert identity["user"] == "Alice.Smith@example.com"
    assert identity["groups"] == sorted(ALICE_GROUPS)
    assert identity["profile"]["slug"] == "gpu-1"
    assert identity["profile"]["gpu"] == {"count": 1, "resource": "nvidia.com/gpu"}
    assert "at-123" not in cm_data["data"]["identity.json"]


@pytest.mark.asyncio
async def test_profile_list_and_form_are_group_filtered(make_user: Any) -> None:
    bob = make_user("bob", ["data-science"], KubelabSpawner).spawner
    slugs = [p["slug"] for p in await bob.profile_list(bob)]
    assert slugs == ["small", "large"]
    form = await bob.get_options_form()
    assert "Large" in form and "NVIDIA" not in form and "MIG" not in form


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("formdata", "status", "text"),
    [
        ({"profile": ["gpu-1"]}, 403, "not allowed for your groups"),
        ({"profile": ["no-such"]}, 400, "Unknown profile"),
        (
            {"profile": ["small"], "profile-option-small--image": ["pytorch-cuda"]},
            403,
            "not offered by profile",
        ),
    ],
)
async def test_crafted_form_is_refused(
    make_user: Any, formdata: dict[str, list[str]], status: int, text: str
) -> None:
    bob = make_user("bob", ["data-science"], KubelabSpawner).spawner
    with pytest.raises(web.HTTPError) as info:
        await bob.run_options_from_form(formdata)
    assert info.value.status_code == status
    assert text in info.value.jupyterhub_message
    # the REST API path (user_options set directly) is checked as well
    options = {"profile": formdata["profile"][0]}
    if len(formdata) > 1:
        options["image"] = next(iter(formdata.values().__reversed__()))[0]
    with pytest.raises(web.HTTPError) as again:
        await bob._run_apply_user_options(options)
    assert again.value.status_code == status


@pytest.mark.asyncio
async def test_allowed_form_choice_passes(make_user: Any) -> None:
    bob = make_user("bob", ["data-science"], KubelabSpawner).spawner
    options = await bob.run_options_from_form(
        {"profile": ["large"], "profile-option-large--image": ["pytorch"]}
    )
    assert options == {"profile": "large", "image": "pytorch"}


@pytest.mark.asyncio
async def test_choice_survives_a_hub_restart(make_user: Any) -> None:
    spawner, _ = await pod_for(make_user, "gpu-1", "pytorch")
    state = spawner.get_state()
    assert (state["kubelab_profile"], state["kubelab_image"]) == ("gpu-1", "pytorch")
    restored = make_user("carol", [], KubelabSpawner).spawner
    restored.load_state(state)
    assert restored.kubelab_profile.slug == "gpu-1"
    assert restored.kubelab_image.name == "pytorch"


@pytest.mark.asyncio
async def test_profiles_file_broken_while_running(make_user: Any, tmp_path: Any) -> None:
    broken = tmp_path / "profiles.yaml"
    broken.write_text("images: []\nprofiles: []\n")
    bob = make_user("bob", ["data-science"], KubelabSpawner, profiles_file=str(broken)).spawner
    with pytest.raises(web.HTTPError) as info:
        await bob._run_apply_user_options({"profile": "small"})
    assert info.value.status_code == 500
    assert "administrator" in info.value.jupyterhub_message
