"""`from kubelab.pipelines import components` replaces `from kfp import components`.

Load a shared component (or a whole compiled pipeline) from YAML text, a file or a
URL, then call it inside a `@dsl.pipeline` like a decorated one:

    add = components.load_component_from_file("add.yaml")

Both KFP formats load: the compiled IR that `compiler.Compiler().compile` writes
(v2) and the older `component.yaml` with `{inputValue: x}` placeholders (v1).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from kubelab.pipelines.dsl.yaml_component import YamlComponent, load_yaml_component
from kubelab.pipelines.errors import KubelabError, NotFoundError

__all__ = [
    "YamlComponent",
    "load_component_from_file",
    "load_component_from_text",
    "load_component_from_url",
]

_URL_TIMEOUT_S = 30


def load_component_from_text(text: str) -> YamlComponent:
    """A component from YAML text."""
    if not isinstance(text, str):
        raise KubelabError(f"load_component_from_text takes a str, got {type(text).__name__}.")
    return load_yaml_component(text)


def load_component_from_file(file_path: str | os.PathLike[str]) -> YamlComponent:
    """A component from a YAML file (`~` is expanded)."""
    path = os.path.expanduser(os.fspath(file_path))
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise NotFoundError(f"Component file not found: {path}", path=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise KubelabError(f"Cannot read component file {path}: {error}", path=path) from error
    return load_yaml_component(text, source=path)


def load_component_from_url(url: str, auth: tuple[str, str] | None = None) -> YamlComponent:
    """A component from an http(s) URL; `gs://` URLs of public objects work as in KFP."""
    if not isinstance(url, str) or not url:
        raise KubelabError("load_component_from_url needs a URL.")
    if url.startswith("gs://"):
        url = "https://storage.googleapis.com/" + url[len("gs://") :]
    if not url.startswith(("https://", "http://")):
        raise KubelabError(f"load_component_from_url takes an http(s) or gs:// URL, got {url!r}.")
    request = urllib.request.Request(url)
    if auth is not None:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=_URL_TIMEOUT_S) as response:
            text = response.read().decode("utf-8")
    except (urllib.error.URLError, TimeoutError, UnicodeDecodeError) as error:
        raise KubelabError(f"Cannot load the component at {url}: {error}", url=url) from error
    return load_yaml_component(text, source=url)
