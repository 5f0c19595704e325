"""KubelabSpawner without a cluster: the form, the checks of a choice, state.

What it creates in a cluster is tested against a real API server: test_kube_cluster.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from tornado import web

from kubelab.spawner import KubelabSpawner

ALICE_GROUPS = ["gpu-users", "data-science"]


async def pod_for(make_user: Any, profile: str, image: str | None = None, **traits: Any) -> Any:
    user = make_user("Alice.Smith@example.com", ALICE_GROUPS, KubelabSpawner, **traits)
    spawner = user.spawner
    spawner.user_options = {"profile": profile, **({"image": image} if image else {})}
    await spawner.apply_user_options(spawner, spawner.user_options)
    await spawner.load_user_options()
    return spawner, await spawner.get_pod_manifest()


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
