"""Golden pipelines: one module per DSL feature group, shared by compiler and engine tests.

Each module defines `pipeline` (the @dsl.pipeline), `ARGUMENTS` (arguments for a
test run) and `EXPECTED_OUTPUTS` (pipeline outputs by name, "Output" for a single
return; for an artifact output, key "<name>.text" holds the text its file contains).
Some also define `EXPECTED_TASK_STATES` ({task name: "SUCCEEDED" | "SKIPPED"}) where
the outputs alone cannot show the behaviour (e.g. which If/Elif/Else branch ran).

Modules are imported by file path, so this works whether or not `golden` is on sys.path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

GOLDEN_DIR = Path(__file__).resolve().parent

GOLDEN_NAMES: tuple[str, ...] = (
    "params_namedtuple",
    "artifacts",
    "container",
    "parallel_for",
    "conditions",
    "exit_handler",
    "importer",
    "nested",
    "task_methods",
    "pipeline_outputs",
)


def load_golden(name: str) -> ModuleType:
    """Import one golden module (cached in sys.modules as `kubelab_golden_<name>`)."""
    qualified = f"kubelab_golden_{name}"
    module = sys.modules.get(qualified)
    if module is None:
        spec = importlib.util.spec_from_file_location(qualified, GOLDEN_DIR / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[qualified]
            raise
    return module


def golden_modules() -> list[ModuleType]:
    """Every golden module, in GOLDEN_NAMES order."""
    return [load_golden(name) for name in GOLDEN_NAMES]
