"""The admin profiles file: schema validation with the field named, model and choices."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kubelab.spawner.profiles import (
    ChoiceError,
    ProfilesError,
    load_profiles,
    parse_profiles,
    schema,
)

from .conftest import EXAMPLE_PROFILES


@pytest.fixture
def raw() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE_PROFILES.read_text())


def test_example_file_is_valid_against_the_schema(raw: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.validate(raw, schema())
    config = load_profiles(EXAMPLE_PROFILES)
    assert [p.slug for p in config.profiles] == ["small", "large", "gpu-1", "mig-small"]
    gpu = config.profile("gpu-1")
    assert (gpu.gpu_count, gpu.gpu_resource) == (1, "nvidia.com/gpu")
    assert config.profile("mig-small").gpu_resource == "nvidia.com/mig-1g.5gb"
    assert config.profile("small").cpu_guarantee == "500m"  # 0.5 → quantity string
    assert config.profile("small").memory_limit == "2Gi"
    assert [p.kubeflow_pipelines for p in config.profiles] == [False, True, False, False]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["profiles"][2]["gpu"].update(count=-1),
            "profiles[2].gpu.count: -1 is less than the minimum of 0",
        ),
        (
            lambda d: d["profiles"][2]["gpu"].update(resource="intel.com/fpga"),
            "profiles[2].gpu.resource: 'intel.com/fpga' does not match",
        ),
        (lambda d: d["profiles"][0].update(slug="Not_A_Slug"), "profiles[0].slug:"),
        (lambda d: d["profiles"][1]["memory"].update(limit="lots"), "profiles[1].memory.limit:"),
        (lambda d: d["profiles"][0].update(colour="red"), "profiles[0]: Additional properties"),
        (lambda d: d.pop("images"), "(top level): 'images' is a required property"),
        (lambda d: d["profiles"][0].update(images=["nope"]), "profiles[0].images[0]: unknown"),
        (lambda d: d["profiles"][1].update(slug="small"), "profiles[1].slug: duplicate"),
        (
            lambda d: d["profiles"][0]["cpu"].update(guarantee=4),
            "profiles[0].cpu: guarantee is larger than limit",
        ),
        (lambda d: d["profiles"][1].update(default=True), "more than one profile has default"),
        (
            lambda d: d["profiles"][1].update(kubeflow_pipelines="yes"),
            "profiles[1].kubeflow_pipelines: 'yes' is not of type 'boolean'",
        ),
    ],
)
def test_invalid_files_name_the_field(raw: dict[str, Any], mutate: Any, message: str) -> None:
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(ProfilesError) as info:
        parse_profiles(data, source="profiles.yaml")
    assert str(info.value).startswith("profiles.yaml: ")
    assert message in str(info.value)


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ProfilesError, match="cannot read"):
        load_profiles(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("images: [\n")
    with pytest.raises(ProfilesError, match="not valid YAML"):
        load_profiles(bad)


def test_group_gating_and_choices() -> None:
    config = load_profiles(EXAMPLE_PROFILES)
    alice, bob = {"gpu-users", "data-science"}, {"data-science"}
    assert [p.slug for p in config.allowed_profiles(alice)] == [
        "small",
        "large",
        "gpu-1",
        "mig-small",
    ]
    assert [p.slug for p in config.allowed_profiles(bob)] == ["small", "large"]
    assert [p.slug for p in config.allowed_profiles(set())] == ["small"]

    profile, image = config.resolve(alice, "gpu-1", "pytorch")
    assert (profile.slug, image.name) == ("gpu-1", "pytorch")
    profile, image = config.resolve(bob, None, None)  # defaults
    assert (profile.slug, image.name) == ("small", "scipy")

    with pytest.raises(ChoiceError) as forbidden:
        config.resolve(bob, "gpu-1", None)
    assert forbidden.value.status == 403
    assert "not allowed for your groups" in forbidden.value.message
    with pytest.raises(ChoiceError) as unknown:
        config.resolve(alice, "huge-tpu", None)
    assert unknown.value.status == 400
    with pytest.raises(ChoiceError) as wrong_image:
        config.resolve(bob, "small", "pytorch-cuda")  # exists, not offered by "small"
    assert wrong_image.value.status == 403
    with pytest.raises(ChoiceError) as no_image:
        config.resolve(bob, "small", "evil/miner:latest")
    assert no_image.value.status == 400
