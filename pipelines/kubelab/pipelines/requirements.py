"""What a component asks pip for: requirements, where they come from, what is skipped.

One parser for both sides of a component's packages:

* the local engine reads the `pip install` lines of a compiled component's shell
  prologue (kubelab's or the kfp SDK's) with `parse_pip_install()`, installs what the
  current interpreter lacks into a cached layered venv, from the indexes the component
  named (`pip_index_urls`): a private package name never falls through to the public
  index;
* in a container, `python3 -m kubelab.pipelines.requirements REQ...` exits 1 when a
  requirement is not satisfied *with its version*, so the prologue runs pip then.

Only the packages the engine provides itself are skipped: the requirement whose
project name (PEP 503-normalised) is exactly `kfp` or `kubelab` (KFP's prologue
installs its SDK in every component). `kfp-kubernetes`, `kfp-server-api` or a private
`kubelab-utils` are ordinary packages.

Standard library only (plus `packaging`, or pip's vendored copy in a bare image), so
it runs in any container that has Python and pip.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any


def _requirement(text: str) -> Any:
    """`packaging`'s Requirement, or None when `text` is not one (a URL, a path).

    Imported here, not at the top: the component runtime imports this module for
    RUNTIME_MARK in images that have neither packaging nor pip.
    """
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # a bare image with pip: pip carries its own copy
        from pip._vendor.packaging.requirements import (  # type: ignore[no-redef]
            InvalidRequirement,
            Requirement,
        )
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _canonical(name: str) -> str:
    """PEP 503 normalisation, as packaging.utils.canonicalize_name does."""
    return re.sub(r"[-_.]+", "-", name).lower()


# Projects the engine brings itself; a component's request for them is not installed.
PROVIDED_BY_ENGINE = frozenset({"kfp", "kubelab"})
# Ends the prologue line that installs kubelab's own runtime (maybe from a wheel path).
RUNTIME_MARK = "# kubelab-runtime"

# pip options that change where packages come from, with their long spelling.
_SOURCE_OPTIONS = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "--trusted-host": "--trusted-host",
    "-f": "--find-links",
    "--find-links": "--find-links",
}
# Options of `pip install` that take a value we do not keep (so the value is no package).
_OPTIONS_WITH_VALUE = frozenset(
    {"-c", "--constraint", "-r", "--requirement", "-t", "--target", "--prefix", "--root",
     "--platform", "--python-version", "--implementation", "--abi", "--progress-bar",
     "--src", "--upgrade-strategy", "--log", "--cache-dir", "--timeout", "--retries",
     "--proxy", "--cert", "--client-cert", "--exists-action", "-e", "--editable"}
)  # fmt: skip


@dataclass(frozen=True)
class PipInstall:
    """The packages of a component and the pip options that say where they come from."""

    requirements: tuple[str, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    # (requirement, why) for what is not installed, to say so in the task log.
    skipped: tuple[tuple[str, str], ...] = field(default=())

    def pip_options(self) -> list[str]:
        """The source options for a `pip install` of `requirements`."""
        options: list[str] = []
        if self.index_url:
            options += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            options += ["--extra-index-url", url]
        for host in self.trusted_hosts:
            options += ["--trusted-host", host]
        for link in self.find_links:
            options += ["--find-links", link]
        return options


def provided_by_engine(requirement: str) -> bool:
    """True for `kfp`, `kfp==2.17.0`, `KFP[kubernetes]`…; false for `kfp-kubernetes`."""
    req = _requirement(requirement)
    return req is not None and _canonical(req.name) in PROVIDED_BY_ENGINE


def parse_pip_install(snippet: str) -> PipInstall:
    """The requirements and source options of every `pip install` in a shell prologue."""
    requirements: list[str] = []
    skipped: list[tuple[str, str]] = []
    sources: dict[str, list[str]] = {opt: [] for opt in set(_SOURCE_OPTIONS.values())}
    for line in snippet.splitlines():
        if line.rstrip().endswith(RUNTIME_MARK):
            continue  # kubelab's own prologue, not something the user asked for
        words = _words(line)
        for start in _pip_install_starts(words):
            _parse_arguments(words[start:], requirements, skipped, sources)
    index_urls = list(dict.fromkeys(sources["--index-url"]))
    index_url = index_urls[0] if index_urls else None
    # Another --index-url on a later line adds an index, as pip would see it.
    extras = [u for u in index_urls[1:] + sources["--extra-index-url"] if u != index_url]
    return PipInstall(
        requirements=tuple(dict.fromkeys(requirements)),
        index_url=index_url,
        extra_index_urls=tuple(dict.fromkeys(extras)),
        trusted_hosts=tuple(dict.fromkeys(_host(h) for h in sources["--trusted-host"])),
        find_links=tuple(dict.fromkeys(sources["--find-links"])),
        skipped=tuple(dict.fromkeys(skipped)),
    )


def _host(value: str) -> str:
    """pip's --trusted-host takes `host[:port]`; KFP writes the whole index URL there,
    which pip refuses for a URL with a port. Keep what it means: that URL's host."""
    if "://" in value:
        from urllib.parse import urlsplit

        return urlsplit(value).netloc or value
    return value


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote: not a line we can read as a command
        return []


def _pip_install_starts(words: list[str]) -> list[int]:
    """Indexes just after each `pip install` (also `python3 -m pip install`)."""
    return [i + 2 for i in range(len(words) - 1) if words[i] in ("pip", "pip3") and words[i + 1] == "install"]  # fmt: skip


def _parse_arguments(
    words: list[str],
    requirements: list[str],
    skipped: list[tuple[str, str]],
    sources: dict[str, list[str]],
) -> None:
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("&&", "||", ";", "|", "then", "fi"):
            return  # the end of this command
        name, _, inline = word.partition("=")
        if word.startswith("-"):
            if name in _SOURCE_OPTIONS:
                value = inline if inline else (words[i + 1] if i + 1 < len(words) else "")
                if value:
                    sources[_SOURCE_OPTIONS[name]].append(value)
                i += 1 if inline else 2
                continue
            i += 2 if (word in _OPTIONS_WITH_VALUE and not inline) else 1
            continue
        if provided_by_engine(word):
            skipped.append((word, "the engine provides the KFP runtime itself"))
        elif _applies_here(word):  # else pip would ignore it here too
            requirements.append(word)
        i += 1


def _applies_here(requirement: str) -> bool:
    req = _requirement(requirement)
    return req is None or req.marker is None or req.marker.evaluate()  # a URL: pip decides


def missing(requirements: tuple[str, ...] | list[str]) -> list[str]:
    """Requirements this interpreter does not satisfy, versions included."""
    from importlib.metadata import PackageNotFoundError, version

    absent: list[str] = []
    for text in requirements:
        req = _requirement(text)
        if req is None:
            absent.append(text)  # a URL or path: let pip deal with it
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            absent.append(text)
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            absent.append(text)
    return absent


def main(argv: list[str]) -> int:
    """`python3 -m kubelab.pipelines.requirements REQ...`: 0 when all are satisfied."""
    absent = missing(argv)
    for text in absent:
        print(f"kubelab: {text} is not installed here", file=sys.stderr)
    return 1 if absent else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
