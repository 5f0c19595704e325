"""`kubelab jobs list | show | logs | cancel | delete`: training, tuning and serving jobs
of every backend, through `Client` (each kind adds its own `kubelab <verb>` to start one)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kubelab.client.cli.common import (
    add_output_option,
    client_from,
    print_json,
    print_record,
    print_table,
    write_stream,
)
from kubelab.client.store import JOB_KINDS


def register(subparsers: Any) -> None:
    jobs_p = subparsers.add_parser(
        "jobs", help="list, inspect, follow, cancel and delete training, tuning and serving jobs"
    )
    sub = jobs_p.add_subparsers(dest="jobs_command", metavar="ACTION")
    list_p = sub.add_parser("list", help="recent jobs of every backend, newest first")
    list_p.add_argument("--kind", choices=JOB_KINDS, help="only jobs of this kind")
    list_p.add_argument("--limit", type=int, default=20)
    add_output_option(list_p)
    list_p.set_defaults(handler=list_command)
    show_p = sub.add_parser("show", help="a job with its steps (nodes, trials, server)")
    show_p.add_argument("job", help="job name (a unique prefix is enough)")
    add_output_option(show_p)
    show_p.set_defaults(handler=show_command)
    logs_p = sub.add_parser("logs", help="the log of one step of a job")
    logs_p.add_argument("job")
    logs_p.add_argument("--step", help="e.g. node-1 or trial-0003 (default: the first step)")
    logs_p.add_argument(
        "--follow", "-f", action="store_true", help="keep printing until the step ends"
    )
    logs_p.set_defaults(handler=logs_command)
    cancel_p = sub.add_parser("cancel", help="stop a job, keep its record")
    cancel_p.add_argument("job")
    cancel_p.set_defaults(handler=cancel_command)
    delete_p = sub.add_parser("delete", help="stop a job if needed, then forget it")
    delete_p.add_argument("job")
    delete_p.set_defaults(handler=delete_command)
    jobs_p.set_defaults(handler=lambda args: (jobs_p.print_help(), 2)[1])


def list_command(args: argparse.Namespace) -> int:
    jobs = client_from(args).list_jobs(args.kind, args.limit)
    if args.output == "json":
        print_json(jobs)
    else:
        print_table(jobs, "no jobs yet", kind=True)
    return 0


def show_command(args: argparse.Namespace) -> int:
    job = client_from(args).get_job(args.job)
    if args.output == "json":
        print_json(job)
    else:
        print_record(job, job["kind"])
    return 0


def logs_command(args: argparse.Namespace) -> int:
    chunks = client_from(args).stream_job_logs(args.job, args.step, follow_until_done=args.follow)
    write_stream(chunks)
    return 0


def cancel_command(args: argparse.Namespace) -> int:
    job = client_from(args).cancel_job(args.job)
    print(f"job {job['id']} {job['state']}")
    return 0


def delete_command(args: argparse.Namespace) -> int:
    client = client_from(args)
    job_id = client.get_job(args.job)["id"]
    client.delete_job(job_id)
    print(f"job {job_id} deleted", file=sys.stderr)
    return 0
