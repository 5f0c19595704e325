"""What the `kubelab` sub-commands share: backend options, the client, output helpers."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from kubelab.client.backends import BACKENDS


def add_backend_option(
    parser: argparse.ArgumentParser,
    default: str | None = None,
    default_note: str = "where the run or job is recorded",
) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default,
        help="local: this machine; kubernetes: Kubeflow Pipelines (set $KUBELAB_KFP_ENDPOINT "
        "or --kfp-endpoint) for runs, the cluster of your kubeconfig for jobs"
        + ("" if default else f" (default: {default_note})"),
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
    for warning in record.get("warnings") or []:
        print(f"  warning {warning}")
    print(f"  {'STEP':<40} {'STATE':<10} {'TIME':>8}  NOTE")
    for s in record["steps"]:
        duration = "" if s["duration_s"] is None else f"{s['duration_s']:.2f}s"
        note = "cached" if s["cached"] else (s["error"] or "")
        if s["attempts"] and s["attempts"] > 1:
            note = f"{s['attempts']} attempts {note}".strip()
        print(f"  {s['name']:<40} {s['state']:<10} {duration:>8}  {note}")
        figures = marshal_summary(s.get("marshal") or {})
        if figures:
            print(f"  {'':<40} {'':<10} {'':>8}  {figures}")


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return ""


def marshal_summary(m: dict[str, Any]) -> str:
    """`loaded 2 (80.0 MB, 0.12 s), saved 1 (8.0 MB, 0.03 s), 1 handed on unchanged`."""
    parts = []
    if m.get("loaded"):
        parts.append(
            f"loaded {m['loaded']} ({_size(m.get('load_bytes', 0))}, "
            f"{m.get('load_seconds', 0):.2f} s)"
        )
    if m.get("saved"):
        parts.append(
            f"saved {m['saved']} ({_size(m.get('save_bytes', 0))}, "
            f"{m.get('save_seconds', 0):.2f} s)"
        )
    if m.get("linked"):
        parts.append(f"{m['linked']} handed on unchanged")
    return ", ".join(parts)


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
