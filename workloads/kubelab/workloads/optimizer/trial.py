"""`python -m kubelab.workloads.optimizer.trial notebook PATH name=value...`: one trial
of a tuned notebook inside a Katib trial's container.

It runs the notebook as a pipeline on the embedded engine with the trial's parameters
(as the notebook's pipeline-parameters cell types them) and prints the run's metrics
in Katib's StdOut format, which Katib's collector reads. Local tuning runs notebook
trials on the engine directly (to share the step cache) and reads the same metrics.
"""

from __future__ import annotations

import sys
from typing import Any

from kubelab.pipelines.errors import KubelabError


def notebook_arguments(ir: dict[str, Any], assignments: dict[str, str]) -> dict[str, Any]:
    """A trial's assignments (Katib's strings) as the notebook's typed pipeline parameters."""
    from kubelab.pipelines.local.ir import check_parameter_names, parse_cli_value, root_parameters

    declared = root_parameters(ir)
    check_parameter_names(assignments, declared)
    return {
        name: parse_cli_value(text, declared[name].get("parameterType", "STRING"), name=name)
        for name, text in assignments.items()
    }


def run_notebook_trial(path: str, pairs: list[str]) -> int:
    from kubelab.pipelines.local import engine
    from kubelab.pipelines.local.progress import TerminalProgress
    from kubelab.pipelines.notebook import compile_notebook
    from kubelab.pipelines.notebook.run import preload_modules
    from kubelab.workloads.metrics import report

    nb = compile_notebook(path)
    assignments = dict(pair.partition("=")[::2] for pair in pairs)
    result = engine.run_pipeline(
        nb.pipeline_spec(),
        notebook_arguments(nb.pipeline_spec(), assignments),
        source=path,
        task_metadata=nb.task_metadata(),
        on_event=TerminalProgress(sys.stdout),
        preload=preload_modules(nb),
    )
    metrics = {k: v for k, v in result.run()["metrics"].items() if isinstance(v, int | float)}
    if metrics:
        report(**metrics)
    return 0 if result.succeeded else 1


def run_code(payload: dict[str, Any]) -> int:
    """Run payload["code"] as `python -c` does, in a process forked from the engine's warm
    worker (its `entry` payload): a fresh `__main__`, `sys.argv` of ["-c", *args], the
    working directory first on `sys.path`. Tuned functions start in milliseconds."""
    import os
    import traceback
    import types

    os.environ.update(payload.get("env") or {})
    if payload.get("cwd"):
        os.chdir(payload["cwd"])
    sys.argv = ["-c", *payload.get("args", [])]
    sys.path.insert(0, "")
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    code = 0
    try:
        # The user's own function source (what `python -c` would run), never a value.
        exec(compile(payload["code"], "<string>", "exec"), main.__dict__)
    except SystemExit as error:
        if error.code is None or isinstance(error.code, int):
            code = error.code or 0
        else:
            print(error.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "notebook":
        print(
            "usage: python -m kubelab.workloads.optimizer.trial notebook PATH name=value...",
            file=sys.stderr,
        )
        return 2
    try:
        return run_notebook_trial(argv[1], argv[2:])
    except KubelabError as error:
        print(f"kubelab: error: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
