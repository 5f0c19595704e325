"""`kubelab compile`, `kubelab run` and `kubelab runs ...`: pipelines from the terminal.

Heavy imports (compiler, engine, notebook converter) happen inside the handlers so
that `kubelab --help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError, NotFoundError


def register(subparsers: Any) -> None:
    compile_p = subparsers.add_parser(
        "compile",
        help="compile a notebook or a Python pipeline to KFP v2 IR (YAML)",
        description="Compile NOTEBOOK.ipynb or PIPELINE.py to a KFP v2 PipelineSpec that "
        "kubelab and a Kubeflow Pipelines server both run.",
    )
    compile_p.add_argument("source", help="NOTEBOOK.ipynb or PIPELINE.py")
    compile_p.add_argument("-o", "--output", help="where to write the YAML (default: stdout)")
    compile_p.add_argument("--function", help="the pipeline to compile when the file has several")
    compile_p.add_argument(
        "--emit-python",
        action="store_true",
        help="for a notebook: write the generated KFP DSL module instead of the IR",
    )
    compile_p.set_defaults(handler=compile_command)

    run_p = subparsers.add_parser(
        "run",
        help="run a notebook, a Python pipeline or compiled IR on this machine",
        description="Run a pipeline locally: independent steps in parallel, cached steps reused, "
        "every step recorded in the run store (see `kubelab runs`).",
    )
    run_p.add_argument("source", help="NOTEBOOK.ipynb, PIPELINE.py or pipeline.yaml")
    run_p.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a pipeline parameter, parsed as its declared type (repeatable)",
    )
    run_p.add_argument("--no-cache", action="store_true", help="do not reuse cached step outputs")
    run_p.add_argument("--parallelism", type=int, help="steps at a time (default: CPU count)")
    run_p.add_argument("--function", help="the pipeline to run when the .py file has several")
    run_p.add_argument("--pipeline-root", help="where artifacts go (default: ./local_outputs)")
    run_p.add_argument("--timeout", type=float, help="per-step timeout in seconds")
    run_p.add_argument(
        "--backend",
        choices=("local", "kubernetes"),
        default="local",
        help="where to run (only local is implemented by this command)",
    )
    run_p.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="json: print a summary object on stdout at the end",
    )
    run_p.set_defaults(handler=run_command)

    runs_p = subparsers.add_parser("runs", help="list, inspect, follow and cancel local runs")
    runs_sub = runs_p.add_subparsers(dest="runs_command", metavar="ACTION")
    list_p = runs_sub.add_parser("list", help="recent runs, newest first")
    list_p.add_argument("--limit", type=int, default=20)
    list_p.add_argument("--output", choices=("text", "json"), default="text")
    list_p.set_defaults(handler=runs_list_command)
    show_p = runs_sub.add_parser("show", help="a run with its steps")
    show_p.add_argument("run", help="run id (a unique prefix is enough)")
    show_p.add_argument("--output", choices=("text", "json"), default="text")
    show_p.set_defaults(handler=runs_show_command)
    logs_p = runs_sub.add_parser("logs", help="the log of one step")
    logs_p.add_argument("run")
    logs_p.add_argument("step")
    logs_p.add_argument("--attempt", type=int, help="which attempt (default: the last)")
    logs_p.add_argument(
        "--follow", "-f", action="store_true", help="keep printing until the step ends"
    )
    logs_p.set_defaults(handler=runs_logs_command)
    cancel_p = runs_sub.add_parser("cancel", help="cancel a running run (from any process)")
    cancel_p.add_argument("run")
    cancel_p.set_defaults(handler=runs_cancel_command)
    runs_p.set_defaults(handler=lambda args: (runs_p.print_help(), 2)[1])


# -- loading ------------------------------------------------------------------------


def load_source(source: str, function: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(IR, task metadata) for a notebook, a Python pipeline file or a compiled YAML."""
    path = Path(source)
    if not path.exists():
        raise NotFoundError(f"no such file: {source}", path=source)
    suffix = path.suffix.lower()
    if suffix == ".ipynb":
        from kubelab.pipelines.notebook import compile_notebook

        nb = compile_notebook(str(path))
        return nb.pipeline_spec(), nb.task_metadata()
    if suffix == ".py":
        from kubelab.pipelines import compiler

        pipeline = compiler.load_pipeline_file(str(path), function_name=function)
        return compiler.build_pipeline_spec(pipeline), {}
    if suffix in (".yaml", ".yml", ".json"):
        from kubelab.pipelines.local.ir import load_ir_file

        return load_ir_file(path), {}
    raise KubelabError(
        f"cannot tell what {source} is: expected a .ipynb notebook, a .py pipeline or a "
        ".yaml/.json compiled pipeline",
        path=source,
    )


def parse_params(ir: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    from kubelab.pipelines.local.ir import parse_cli_value, root_parameters

    declared = root_parameters(ir)
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise KubelabError(f"--param wants NAME=VALUE, got {pair!r}")
        if name not in declared:
            raise KubelabError(
                f"unknown parameter {name!r}; valid parameters: "
                f"{', '.join(sorted(declared)) or '(none)'}",
                parameter=name,
            )
        values[name] = parse_cli_value(
            text, declared[name].get("parameterType", "STRING"), name=name
        )
    return values


# -- compile ------------------------------------------------------------------------


def compile_command(args: argparse.Namespace) -> int:
    from kubelab.pipelines import compiler
    from kubelab.pipelines.compiler.compiler import render

    path = Path(args.source)
    if not path.exists():
        raise NotFoundError(f"no such file: {args.source}", path=args.source)
    platform = None
    if path.suffix.lower() == ".py":
        pipeline = compiler.load_pipeline_file(str(path), function_name=args.function)
        spec, platform = compiler.build_specs(pipeline)
    elif path.suffix.lower() == ".ipynb" and args.emit_python:
        from kubelab.pipelines.notebook import compile_notebook

        return _emit(compile_notebook(str(path)).python_source, args.output)
    elif path.suffix.lower() == ".ipynb":
        spec, _ = load_source(args.source)
    else:
        raise KubelabError(
            f"kubelab compile takes a .ipynb notebook or a .py pipeline, got {args.source}",
            path=args.source,
        )
    # The same text `compiler.Compiler().compile` writes (header, PlatformSpec document).
    return _emit(render(spec, platform, args.output or "stdout.yaml"), args.output)


def _emit(text: str, output: str | None) -> int:
    from kubelab.pipelines.compiler.compiler import write_atomically

    if output:
        write_atomically(output, text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# -- run ----------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    if args.backend != "local":
        raise KubelabError(
            "kubelab run executes pipelines locally; submit to Kubeflow Pipelines from the "
            "JupyterLab sidebar or the server API (--backend kubernetes)"
        )
    from kubelab.pipelines.local import engine
    from kubelab.pipelines.local.progress import TerminalProgress

    ir, metadata = load_source(args.source, args.function)
    arguments = parse_params(ir, args.param)
    progress = TerminalProgress(sys.stderr)
    print(f"running {ir.get('pipelineInfo', {}).get('name', 'pipeline')} locally", file=sys.stderr)
    run_id = engine.start_run(
        ir,
        arguments,
        enable_caching=not args.no_cache,
        parallelism=args.parallelism,
        source=os.path.abspath(args.source),
        task_metadata=metadata,
        on_event=progress,
        pipeline_root=args.pipeline_root,
        task_timeout=args.timeout,
    )
    try:
        result = None
        while result is None:
            result = engine.wait_run(run_id, timeout=0.5)
    except KeyboardInterrupt:
        print(f"cancelling run {run_id}...", file=sys.stderr)
        engine.cancel_run(run_id)
        result = engine.wait_run(run_id, timeout=30)
        if result is None:
            raise
    run = result.run()
    if args.output == "json":
        summary = {
            "run_id": result.run_id,
            "state": result.state,
            "error": result.error,
            "steps": {
                s["name"]: {
                    "state": s["state"],
                    "duration_s": s["duration_s"],
                    "cached": s["cached"],
                }
                for s in run["steps"]
            },
            "outputs": result.outputs,
            "metrics": run["metrics"],
        }
        print(json.dumps(summary, indent=2, default=str))
    else:
        if result.outputs:
            print(f"outputs: {json.dumps(result.outputs, default=str)}", file=sys.stderr)
        print(f"details: kubelab runs show {result.run_id}", file=sys.stderr)
    return 0 if result.state == "succeeded" else 1


# -- runs ---------------------------------------------------------------------------


def _store() -> Any:
    from kubelab.client.store import RunStore

    return RunStore()


def _when(iso: str | None) -> str:
    return (iso or "-").replace("T", " ")[:19]


def runs_list_command(args: argparse.Namespace) -> int:
    runs = _store().list_runs(limit=args.limit)
    if args.output == "json":
        print(json.dumps(runs, indent=2, default=str))
        return 0
    if not runs:
        print("no runs yet (start one with `kubelab run`)")
        return 0
    print(f"{'ID':<24} {'STATE':<10} {'CREATED':<20} {'STEPS':<8} NAME")
    for run in runs:
        done = sum(1 for s in run["steps"] if s["state"] == "succeeded")
        print(
            f"{run['id']:<24} {run['state']:<10} {_when(run['created_at']):<20} "
            f"{done}/{len(run['steps']):<6} {run['name']}"
        )
    return 0


def runs_show_command(args: argparse.Namespace) -> int:
    run = _store().get_run(args.run)
    if args.output == "json":
        print(json.dumps(run, indent=2, default=str))
        return 0
    print(f"run {run['id']}  {run['name']}  {run['state']}")
    print(f"  created {_when(run['created_at'])}  finished {_when(run['finished_at'])}")
    if run["source"]:
        print(f"  source {run['source']}")
    if run["parameters"]:
        print(f"  parameters {json.dumps(run['parameters'], default=str)}")
    if run["metrics"]:
        print(f"  metrics {json.dumps(run['metrics'], default=str)}")
    if run["error"]:
        print(f"  error {run['error']}")
    print(f"  {'STEP':<40} {'STATE':<10} {'TIME':>8}  NOTE")
    for s in run["steps"]:
        duration = "" if s["duration_s"] is None else f"{s['duration_s']:.2f}s"
        note = "cached" if s["cached"] else (s["error"] or "")
        if s["attempts"] and s["attempts"] > 1:
            note = f"{s['attempts']} attempts {note}".strip()
        print(f"  {s['name']:<40} {s['state']:<10} {duration:>8}  {note}")
    return 0


def runs_logs_command(args: argparse.Namespace) -> int:
    store = _store()
    info = store.task_info(args.run, args.step)
    path = info.get("log_path")
    if args.attempt:
        if not path:
            raise NotFoundError(f"step {args.step!r} has no logs")
        path = str(Path(path).with_name(f"attempt-{args.attempt}.log"))
    if info.get("cached") and not path:
        print(f"step {args.step!r} was cached: it did not run in this run", file=sys.stderr)
        return 0
    if not path or not Path(path).exists():
        raise NotFoundError(
            f"step {args.step!r} of run {info['run_id']} has no log yet (state: {info['state']})",
            run=info["run_id"],
            step=args.step,
        )
    with open(path, errors="replace") as f:
        while True:
            chunk = f.read()
            if chunk:
                sys.stdout.write(chunk)
                sys.stdout.flush()
            if not args.follow:
                break
            state = store.task_info(info["run_id"], info["name"])["state"]
            if state not in ("pending", "running"):
                sys.stdout.write(f.read())
                break
            time.sleep(0.3)
    return 0


def runs_cancel_command(args: argparse.Namespace) -> int:
    from kubelab.pipelines.local.engine import cancel_run

    store = _store()
    run = store.get_run(args.run)
    if run["state"] not in ("pending", "running"):
        print(f"run {run['id']} already {run['state']}", file=sys.stderr)
        return 0
    cancel_run(run["id"], store=store)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        state = store.get_run(run["id"])["state"]
        if state not in ("pending", "running"):
            print(f"run {run['id']} {state}")
            return 0
        time.sleep(0.2)
    print(
        f"cancel requested for run {run['id']}; its engine has not stopped it yet", file=sys.stderr
    )
    return 1
