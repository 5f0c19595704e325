"""Child process of `validate_notebook`: runs each step once, round-tripping its outputs.

Runs in its own process (never inside the Jupyter server) with the same runtime the
generated components use, one fresh namespace per step, so a variable that fails to
save, load or travel between steps fails here the way it would in the pipeline.
Usage: python -m kubelab.pipelines.notebook.validate_worker PLAN.json RESULT.json
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook import marshal, runtime


class _MetricsSink:
    """Stands in for the Metrics artifact: collects what log_metric gets."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def log_metric(self, name: str, value: float) -> None:
        self.values[name] = value


def _error_location(error: BaseException, step: str) -> tuple[int | None, int | None]:
    prefix = "<notebook cell "
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.startswith(prefix) and frame.filename.endswith(f"step {step}>"):
            cell = int(frame.filename[len(prefix) :].split(",", 1)[0]) - 1  # shown from 1
            return cell, frame.lineno
    return None, None


def run_plan(plan: dict[str, Any]) -> dict[str, Any]:
    scratch = Path(plan["scratch"])
    result: dict[str, Any] = {"steps": [], "variables": [], "metrics": {}}
    failed = False
    for step in plan["steps"]:
        name = step["name"]
        entry: dict[str, Any] = {"name": name, "ok": False, "seconds": 0.0}
        result["steps"].append(entry)
        if failed:
            entry["skipped"] = True
            continue
        started = time.perf_counter()
        try:
            ns = runtime.namespace(name, {p: plan["parameters"][p] for p in step["parameters"]})
            for cell, code in plan["prelude"] + step["reimports"]:
                runtime.run_cell(ns, cell, name, code)
            for var, producer in step["inputs"]:
                runtime.load(ns, var, str(scratch / producer / var))
            for cell, code in step["sources"]:
                runtime.run_cell(ns, cell, name, code)
            for var, cell in step["outputs"]:
                check = {"name": var, "producer": name, "cell": cell, "ok": False}
                result["variables"].append(check)
                directory = scratch / name / var
                try:
                    check["marshaller"] = runtime.save(
                        ns, var, str(directory), step=name, cell=cell
                    )
                    marshal.load(directory)  # the round trip the next step will do
                    check["type"] = marshal.describe(directory)["type"]
                    check["ok"] = True
                except KubelabError as error:
                    check["error"] = error.message
                    failed = True
                except Exception as error:  # loading back failed
                    check["error"] = f"saved but cannot be loaded back: {error}"
                    failed = True
            if step["metrics"]:
                sink = _MetricsSink()
                runtime.log_metrics(ns, sink, step["metrics"], step=name, cell=step["cells"][0])
                result["metrics"] = sink.values
            entry["ok"] = not failed
        except KubelabError as error:
            entry["error"] = error.message
            entry["cell"] = error.details.get("cell")
            failed = True
        except Exception as error:
            cell, line = _error_location(error, name)
            entry["error"] = f"{type(error).__name__}: {error}"
            entry["cell"], entry["line"] = cell, line
            entry["traceback"] = "".join(traceback.format_exception(error))
            failed = True
        entry["seconds"] = round(time.perf_counter() - started, 3)
    return result


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text())
    result = run_plan(plan)
    Path(argv[1]).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
