"""`kubelab runs list | show | logs | cancel`: pipeline runs of any backend, through `Client`.

`compare`, `lineage`, `reproduce` and `export` are in `cli/lineage.py`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from kubelab.client.cli import lineage
from kubelab.client.cli.common import (
    add_backend_option,
    add_output_option,
    client_from,
    print_json,
    print_record,
    print_table,
    write_stream,
)
from kubelab.pipelines.errors import NotFoundError


def register(subparsers: Any) -> None:
    runs_p = subparsers.add_parser(
        "runs", help="list, inspect, follow, cancel, compare and reproduce pipeline runs"
    )
    runs_sub = runs_p.add_subparsers(dest="runs_command", metavar="ACTION")
    list_p = runs_sub.add_parser(
        "list", help="recent runs of every backend (Kubeflow Pipelines when set), newest first"
    )
    list_p.add_argument("--limit", type=int, default=20)
    list_p.add_argument("--experiment", help="only the runs of this experiment (id or name)")
    list_p.add_argument(
        "--archived", action="store_true", help="include runs of archived experiments"
    )
    add_output_option(list_p)
    add_backend_option(list_p, default_note="every configured backend")
    list_p.set_defaults(handler=list_command)
    show_p = runs_sub.add_parser("show", help="a run with its steps")
    show_p.add_argument("run", help="run id (a unique prefix of a local run's id is enough)")
    add_output_option(show_p)
    add_backend_option(show_p)
    show_p.set_defaults(handler=show_command)
    logs_p = runs_sub.add_parser("logs", help="the log of one step")
    logs_p.add_argument("run")
    logs_p.add_argument("step", help="the step's task name or notebook step name")
    logs_p.add_argument("--attempt", type=int, help="which attempt (default: the last)")
    logs_p.add_argument(
        "--follow", "-f", action="store_true", help="keep printing until the step ends"
    )
    add_backend_option(logs_p)
    logs_p.set_defaults(handler=logs_command)
    cancel_p = runs_sub.add_parser("cancel", help="cancel a running run (from any process)")
    cancel_p.add_argument("run")
    add_backend_option(cancel_p)
    cancel_p.set_defaults(handler=cancel_command)
    lineage.register(runs_sub)
    runs_p.set_defaults(handler=lambda args: (runs_p.print_help(), 2)[1])


def list_command(args: argparse.Namespace) -> int:
    runs = client_from(args).list_runs(
        args.limit,
        backend=args.backend,
        experiment=args.experiment,
        include_archived=args.archived,
    )
    for backend, reason in runs.unavailable.items():
        print(f"{backend}: {reason} (its runs started here: last known state)", file=sys.stderr)
    if args.output == "json":
        print_json(runs)
    else:
        print_table(runs, "no runs yet (start one with `kubelab run`)")
    return 0


def show_command(args: argparse.Namespace) -> int:
    run = client_from(args).get_run(args.run, backend=args.backend)
    if args.output == "json":
        print_json(run)
    else:
        print_record(run, "run")
    return 0


def logs_command(args: argparse.Namespace) -> int:
    client = client_from(args)
    if args.attempt:
        return _print_attempt(client, args)
    run = client.get_run(args.run, backend=args.backend)
    step = next((s for s in run["steps"] if args.step in (s["name"], s["display_name"])), None)
    if step is not None and step["cached"]:
        print(f"step {args.step!r} was cached: it did not run in this run", file=sys.stderr)
        return 0
    chunks = client.stream_logs(
        run["id"], args.step, follow_until_done=args.follow, backend=args.backend
    )
    if not write_stream(chunks) and not args.follow and step and step["state"] == "pending":
        raise NotFoundError(
            f"step {args.step!r} of run {run['id']} has no log yet (state: pending)",
            run=run["id"],
            step=args.step,
        )
    return 0


def _print_attempt(client: Any, args: argparse.Namespace) -> int:
    """An earlier attempt's log of a local step (files next to the last one)."""
    run = client.get_run(args.run, backend=args.backend)
    info = client.store.task_info(run["id"], args.step)
    if not info.get("log_path"):
        raise NotFoundError(f"step {args.step!r} has no logs")
    path = Path(info["log_path"]).with_name(f"attempt-{args.attempt}.log")
    if not path.is_file():
        raise NotFoundError(f"step {args.step!r} has no attempt {args.attempt}")
    sys.stdout.write(path.read_text(errors="replace"))
    return 0


def cancel_command(args: argparse.Namespace) -> int:
    client = client_from(args)
    run = client.get_run(args.run, backend=args.backend)
    if run["state"] not in ("pending", "running"):
        print(f"run {run['id']} already {run['state']}", file=sys.stderr)
        return 0
    client.cancel(run["id"], backend=args.backend)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        state = client.get_run(run["id"], backend=args.backend)["state"]
        if state not in ("pending", "running"):
            print(f"run {run['id']} {state}")
            return 0
        time.sleep(0.2)
    print(
        f"cancel requested for run {run['id']}; its engine has not stopped it yet", file=sys.stderr
    )
    return 1
