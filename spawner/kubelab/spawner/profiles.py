"""The admin profiles file: images and resource profiles, read by both kubelab spawners.

One YAML file is the single source of truth so that the laptop (local processes) and
the cluster (KubeSpawner pods) offer the same choices; it is validated against a JSON
Schema plus a few cross-reference checks, and every error names the offending field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_FILE = "profiles.schema.json"
GPU_RESOURCE_DEFAULT = "nvidia.com/gpu"

_MEMORY_SUFFIXES = {
    "": 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


class ProfilesError(ValueError):
    """The profiles file is unusable; the message names the file and the field."""


class ChoiceError(ValueError):
    """A user's profile/image choice is refused; `status` is the HTTP status to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Image:
    name: str
    image: str
    display_name: str
    default: bool = False


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    cpu_guarantee: str | None = None
    cpu_limit: str | None = None
    memory_guarantee: str | None = None
    memory_limit: str | None = None
    gpu_count: int = 0
    gpu_resource: str = GPU_RESOURCE_DEFAULT
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    images: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    kubeflow_pipelines: bool = False  # mount the KFP ServiceAccount token

    def allows_groups(self, groups: set[str] | frozenset[str]) -> bool:
        """An empty `groups` list means everyone may use the profile."""
        return not self.groups or bool(set(self.groups) & set(groups))

    def summary(self, image: Image | None = None) -> dict[str, Any]:
        """Non-secret description written to the identity file and shown by /status."""
        return {
            "slug": self.slug,
            "display_name": self.display_name,
            "image": image.image if image else None,
            "cpu": {"guarantee": self.cpu_guarantee, "limit": self.cpu_limit},
            "memory": {"guarantee": self.memory_guarantee, "limit": self.memory_limit},
            "gpu": {"count": self.gpu_count, "resource": self.gpu_resource}
            if self.gpu_count
            else None,
        }


@dataclass(frozen=True)
class ProfilesConfig:
    images: tuple[Image, ...]
    profiles: tuple[Profile, ...]
    source: str = "<memory>"

    def image(self, name: str) -> Image:
        for image in self.images:
            if image.name == name:
                return image
        raise KeyError(name)

    def profile(self, slug: str) -> Profile:
        for profile in self.profiles:
            if profile.slug == slug:
                return profile
        raise KeyError(slug)

    def images_for(self, profile: Profile) -> list[Image]:
        """The profile's allowed images (all images when it lists none), default first."""
        names = profile.images or tuple(i.name for i in self.images)
        chosen = [self.image(n) for n in names]
        return sorted(chosen, key=lambda i: not i.default)

    def allowed_profiles(self, groups: set[str] | frozenset[str]) -> list[Profile]:
        return [p for p in self.profiles if p.allows_groups(groups)]

    def default_profile(self, groups: set[str] | frozenset[str]) -> Profile | None:
        allowed = self.allowed_profiles(groups)
        return next((p for p in allowed if p.default), allowed[0] if allowed else None)

    def resolve(
        self, groups: set[str] | frozenset[str], slug: str | None, image: str | None
    ) -> tuple[Profile, Image]:
        """Check a user's choice on the server side: unknown → 400, forbidden → 403."""
        if slug:
            try:
                profile = self.profile(slug)
            except KeyError:
                raise ChoiceError(400, f"Unknown profile {slug!r}.") from None
            if not profile.allows_groups(groups):
                raise ChoiceError(
                    403,
                    f"Profile {slug!r} is not allowed for your groups "
                    f"({', '.join(sorted(groups)) or 'none'}); it requires one of: "
                    f"{', '.join(profile.groups)}.",
                )
        else:
            default = self.default_profile(groups)
            if default is None:
                raise ChoiceError(403, "No profile is available to your groups.")
            profile = default
        allowed_images = self.images_for(profile)
        if image:
            matches = [i for i in allowed_images if i.name == image]
            if not matches:
                known = any(i.name == image for i in self.images)
                raise ChoiceError(
                    403 if known else 400,
                    f"Image {image!r} is not offered by profile {profile.slug!r}; "
                    f"choose one of: {', '.join(i.name for i in allowed_images)}.",
                )
            return profile, matches[0]
        return profile, allowed_images[0]


def schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text())


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def cpu_quantity(value: Any) -> str | None:
    """Normalise a CPU amount to a Kubernetes quantity string ("500m", "2")."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return str(int(value))
    return f"{round(float(value) * 1000)}m"


def memory_quantity(value: Any) -> str | None:
    """Normalise memory to a Kubernetes quantity string; bare integers are bytes."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(int(value))


def cpu_to_float(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_to_bytes(quantity: str) -> int:
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)", quantity)
    if not match or match.group(2) not in _MEMORY_SUFFIXES:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return math.ceil(float(match.group(1)) * _MEMORY_SUFFIXES[match.group(2)])


def parse_profiles(data: Any, source: str = "<memory>") -> ProfilesConfig:
    """Validate raw data (already parsed YAML) and build the model, or raise ProfilesError."""
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        best = jsonschema.exceptions.best_match(errors) or errors[0]
        raise ProfilesError(f"{source}: {_path(best.absolute_path)}: {best.message}")

    images = tuple(
        Image(
            name=i["name"],
            image=i["image"],
            display_name=i.get("display_name", i["image"]),
            default=i.get("default", False),
        )
        for i in data["images"]
    )
    problems: list[str] = []
    names = [i.name for i in images]
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append(f"images[{index}].name: duplicate image name {name!r}")
    if sum(i.default for i in images) > 1:
        problems.append("images: more than one image has default: true")

    profiles: list[Profile] = []
    for index, raw in enumerate(data["profiles"]):
        where = f"profiles[{index}]"
        cpu, mem, gpu = raw.get("cpu", {}), raw.get("memory", {}), raw.get("gpu", {})
        profile = Profile(
            slug=raw["slug"],
            display_name=raw["display_name"],
            description=raw.get("description", ""),
            default=raw.get("default", False),
            cpu_guarantee=cpu_quantity(cpu.get("guarantee")),
            cpu_limit=cpu_quantity(cpu.get("limit")),
            memory_guarantee=memory_quantity(mem.get("guarantee")),
            memory_limit=memory_quantity(mem.get("limit")),
            gpu_count=gpu.get("count", 0),
            gpu_resource=gpu.get("resource", GPU_RESOURCE_DEFAULT),
            node_selector=dict(raw.get("node_selector", {})),
            tolerations=[dict(t) for t in raw.get("tolerations", [])],
            images=tuple(raw.get("images", ())),
            groups=tuple(raw.get("groups", ())),
            kubeflow_pipelines=raw.get("kubeflow_pipelines", False),
        )
        if any(p.slug == profile.slug for p in profiles):
            problems.append(f"{where}.slug: duplicate profile slug {profile.slug!r}")
        for j, name in enumerate(profile.images):
            if name not in names:
                problems.append(f"{where}.images[{j}]: unknown image {name!r}")
        cpu_pair = (profile.cpu_guarantee, profile.cpu_limit)
        if all(cpu_pair) and cpu_to_float(cpu_pair[0]) > cpu_to_float(cpu_pair[1]):
            problems.append(f"{where}.cpu: guarantee is larger than limit")
        mem_pair = (profile.memory_guarantee, profile.memory_limit)
        if all(mem_pair) and memory_to_bytes(mem_pair[0]) > memory_to_bytes(mem_pair[1]):
            problems.append(f"{where}.memory: guarantee is larger than limit")
        profiles.append(profile)
    if sum(p.default for p in profiles) > 1:
        problems.append("profiles: more than one profile has default: true")
    if problems:
        raise ProfilesError(f"{source}: {problems[0]}")
    return ProfilesConfig(images=images, profiles=tuple(profiles), source=source)


def load_profiles(path: str | Path) -> ProfilesConfig:
    """Read and validate the admin YAML file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ProfilesError(f"{path}: cannot read profiles file: {error.strerror}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProfilesError(f"{path}: not valid YAML: {error}") from error
    return parse_profiles(data, source=str(path))


def check_profiles_file_or_exit(path: str | Path) -> ProfilesConfig:
    """For jupyterhub_config.py: a bad file stops the hub at start with the field named."""
    try:
        return load_profiles(path)
    except ProfilesError as error:
        raise SystemExit(f"kubelab: invalid profiles file: {error}") from None
