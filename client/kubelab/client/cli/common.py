"""What the `kubelab` sub-commands share: backend options, the client, output helpers."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from kubelab.client.backends import BACKENDS


def add_backend_option(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default,
        help="local: this machine; kubernetes: Kubeflow Pipelines (set $KUBELAB_KFP_ENDPOINT "
        "or --kfp-endpoint) for runs, the cluster of your kubeconfig for jobs"
        + ("" if default else " (default: where the run or job is recorded)"),
    )
    parser.add_argument(
        "--kfp-endpoint", help="Kubeflow Pipelines API URL (default: $KUBELAB_KFP_ENDPOINT)"
    )


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text")


def client_from(args: argparse.Namespace, **options: Any) -> Any:
    from kubelab.client import Client

    return Client(
        getattr(args, "backend", None),
        kfp_endpoint=getattr(args, "kfp_endpoint", None),
        **options,
    )


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def when(iso: str | None) -> str:
    return (iso or "-").replace("T", " ")[:19]


def write_stream(chunks: Iterator[str]) -> bool:
    """Print log text as it comes; whether there was any."""
    wrote = False
    for text in chunks:
        sys.stdout.write(text)
        sys.stdout.flush()
        wrote = wrote or bool(text)
    return wrote


def print_record(record: dict[str, Any], what: str) -> None:
    """A run or a job with its steps, as `runs show` and `jobs show` print them."""
    print(f"{what} {record['id']}  {record['name']}  {record['state']}  ({record['backend']})")
    print(f"  created {when(record['created_at'])}  finished {when(record['finished_at'])}")
    for key in ("source", "parameters", "spec", "metrics", "error"):
        value = record.get(key)
        if value:
            print(f"  {key} {value if isinstance(value, str) else json.dumps(value, default=str)}")
    print(f"  {'STEP':<40} {'STATE':<10} {'TIME':>8}  NOTE")
    for s in record["steps"]:
        duration = "" if s["duration_s"] is None else f"{s['duration_s']:.2f}s"
        note = "cached" if s["cached"] else (s["error"] or "")
        if s["attempts"] and s["attempts"] > 1:
            note = f"{s['attempts']} attempts {note}".strip()
        print(f"  {s['name']:<40} {s['state']:<10} {duration:>8}  {note}")


def print_table(records: list[dict[str, Any]], empty: str, *, kind: bool = False) -> None:
    if not records:
        print(empty)
        return
    extra = f"{'KIND':<10} " if kind else ""
    print(f"{'ID':<24} {extra}{'STATE':<10} {'BACKEND':<11} {'CREATED':<20} {'STEPS':<8} NAME")
    for r in records:
        done = sum(1 for s in r["steps"] if s["state"] == "succeeded")
        extra = f"{r['kind']:<10} " if kind else ""
        print(
            f"{r['id']:<24} {extra}{r['state']:<10} {r['backend']:<11} "
            f"{when(r['created_at']):<20} {done}/{len(r['steps']):<6} {r['name']}"
        )
