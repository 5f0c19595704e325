"""Fixtures for the hub UI test: the real local demo stack (OIDC provider + JupyterHub).

The stack helpers live with the spawner tests (tests/spawner/hub_stack.py); they are
loaded by path so ui-tests stays importable on its own.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_STACK_FILE = Path(__file__).resolve().parents[1] / "tests" / "spawner" / "hub_stack.py"


def _load_stack() -> Any:
    spec = importlib.util.spec_from_file_location("kubelab_hub_stack", _STACK_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hub_stack = _load_stack()


def demo_hub_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Body of a fixture: the demo hub on free ports, always stopped afterwards."""
    if not hub_stack.CHP.exists():
        pytest.fail(f"configurable-http-proxy missing: {hub_stack.CHP} (see docs/spawner.md)")
    with hub_stack.running_hub(tmp_path_factory.mktemp("hub")) as stack:
        yield stack
