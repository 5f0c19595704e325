"""`kubelab compile` and `kubelab run`: pipelines from the terminal.

Heavy imports (compiler, engine, notebook converter) happen inside the handlers so
that `kubelab --help` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kubelab.client.cli.common import add_backend_option, client_from, print_json
from kubelab.client.sources import load_pipeline
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
    run_p.add_argument(
        "--parallelism",
        type=int,
        help="most steps at a time (default: all that are ready; steps with a CPU limit "
        "reserve those CPUs)",
    )
    run_p.add_argument(
        "--strict-resources",
        action="store_true",
        help="refuse a step that asks for more GPUs than this machine has (default: it runs "
        "on what there is, with a warning)",
    )
    run_p.add_argument("--function", help="the pipeline to run when the .py file has several")
    run_p.add_argument("--pipeline-root", help="where artifacts go (default: ./local_outputs)")
    run_p.add_argument("--timeout", type=float, help="per-step timeout in seconds")
    run_p.add_argument(
        "--experiment",
        help="the experiment the run joins (created if new; default: one per notebook or file)",
    )
    add_backend_option(run_p, default="local")
    run_p.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="json: print a summary object on stdout at the end",
    )
    run_p.set_defaults(handler=run_command)


# -- parameters ---------------------------------------------------------------------


def parse_params(ir: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    from kubelab.pipelines.local.ir import parse_cli_value, root_parameters

    declared = root_parameters(ir)
    values: dict[str, Any] = {}
    for name, text in split_pairs(pairs, declared):
        values[name] = parse_cli_value(
            text, declared[name].get("parameterType", "STRING"), name=name
        )
    return values


def split_pairs(pairs: list[str], declared: Iterable[str]) -> list[tuple[str, str]]:
    """`--param NAME=VALUE` options as (name, text), every name a declared parameter."""
    from kubelab.pipelines.local.ir import check_parameter_names

    split = []
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise KubelabError(f"--param wants NAME=VALUE, got {pair!r}")
        split.append((name, text))
    check_parameter_names([name for name, _ in split], declared)
    return split


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
        spec = load_pipeline(args.source).ir
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


def _warm_for(source: str) -> None:
    from kubelab.pipelines.local.preload import plan_preload, warm_worker

    warm_worker()  # the server starts up while the notebook's imports are worked out
    if source.lower().endswith(".ipynb") and Path(source).is_file():
        from kubelab.pipelines.notebook.run import preload_modules_of

        # A bad file is reported by the compile that follows, with its cell.
        with contextlib.suppress(Exception):
            plan_preload([], preload_modules_of(source))
            warm_worker()


def run_command(args: argparse.Namespace) -> int:
    if args.backend == "local":
        import threading

        # The engine's warm worker starts, and imports the notebook's libraries, while
        # the notebook compiles (a cold run of the demo is ~1 s shorter).
        threading.Thread(
            target=_warm_for, args=(args.source,), daemon=True, name="kubelab-warm"
        ).start()
    source = load_pipeline(args.source, args.function)
    arguments = parse_params(source.ir, args.param)
    client = client_from(args, pipeline_root=args.pipeline_root)
    name = source.ir.get("pipelineInfo", {}).get("name", "pipeline")
    engine_options: dict[str, Any] = {}
    if args.backend == "local":
        from kubelab.pipelines.local.progress import TerminalProgress

        engine_options = {
            "on_event": TerminalProgress(sys.stderr),
            "parallelism": args.parallelism,
            "task_timeout": args.timeout,
            "strict_resources": args.strict_resources,
        }
    elif args.parallelism or args.timeout or args.pipeline_root or args.strict_resources:
        raise KubelabError(
            "--parallelism, --timeout, --pipeline-root and --strict-resources are for "
            "--backend local"
        )
    print(f"running {name} on the {args.backend} backend", file=sys.stderr)
    run_id = client.create_run(
        source,
        arguments,
        enable_caching=not args.no_cache,
        experiment_name=args.experiment,
        **engine_options,
    )
    if args.backend != "local":
        url = client.get_run(run_id, backend=args.backend).get("url")
        print(f"run {run_id}" + (f": {url}" if url else ""), file=sys.stderr)
    try:
        run = client.wait_for_run_completion(run_id)
    except KeyboardInterrupt:
        print(f"cancelling run {run_id}...", file=sys.stderr)
        client.cancel(run_id)
        run = client.wait_for_run_completion(run_id, timeout=30)
    if args.output == "json":
        summary = {
            "run_id": run["id"],
            "state": run["state"],
            "error": run["error"],
            "warnings": run.get("warnings", []),
            "steps": {
                s["name"]: {
                    "state": s["state"],
                    "duration_s": s["duration_s"],
                    "cached": s["cached"],
                    "error": s["error"],
                    "marshal": s.get("marshal") or {},
                }
                for s in run["steps"]
            },
            "outputs": run.get("outputs", {}),
            "metrics": run["metrics"],
        }
        print_json(summary)
    else:
        if run.get("outputs"):
            print(f"outputs: {json.dumps(run['outputs'], default=str)}", file=sys.stderr)
        print(f"details: kubelab runs show {run['id']}", file=sys.stderr)
    return 0 if run["state"] == "succeeded" else 1
