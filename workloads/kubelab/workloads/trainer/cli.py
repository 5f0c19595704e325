"""`kubelab train SCRIPT.py|NOTEBOOK.ipynb`: a training job from the terminal.

Listing, logs, cancel and delete are the generic `kubelab jobs ...` commands; this
module adds only what is particular to training: building the spec from flags,
`--dry-run -o yaml` (the TrainJob/PyTorchJob that would be created), and waiting
with the node-0 log streamed, or a JSON summary (`-o json`). Exit 0 only on Complete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="run a training script or notebook on N nodes (torch.distributed)",
        description="Run SCRIPT.py or NOTEBOOK.ipynb as a distributed training job: locally as "
        "N x M processes with torchrun's environment, or on Kubernetes as a Kubeflow TrainJob "
        "(PyTorchJob with --api PyTorchJob). Follow it with `kubelab jobs`.",
    )
    parser.add_argument("source", help="SCRIPT.py or NOTEBOOK.ipynb (its non-skip code cells)")
    parser.add_argument("--nodes", type=int, default=1, help="training nodes (default 1)")
    parser.add_argument(
        "--nproc-per-node", type=int, help="processes per node (default: GPUs or 1)"
    )
    parser.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per node (default 0)")
    parser.add_argument("--cpu", help="CPU per node on Kubernetes, e.g. 2 or 500m")
    parser.add_argument("--memory", help="memory per node on Kubernetes, e.g. 4Gi")
    parser.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a notebook's pipeline-parameter, or `--NAME VALUE` for a script (repeatable)",
    )
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--package", action="append", default=[], help="pip requirement")
    parser.add_argument("--name", help="job name (a DNS label; default: generated)")
    parser.add_argument("--backend", choices=("local", "kubernetes"), default=None)
    parser.add_argument("--api", choices=("TrainJob", "PyTorchJob"), help="Kubernetes object kind")
    parser.add_argument("--image", help="container image on Kubernetes (default: the notebook's)")
    parser.add_argument("--namespace", help="Kubernetes namespace (default: your own)")
    parser.add_argument("--runtime", help="ClusterTrainingRuntime (default torch-distributed)")
    parser.add_argument("--dry-run", action="store_true", help="print the manifest, start nothing")
    parser.add_argument("--detach", action="store_true", help="print the job name and return")
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json", "yaml"),
        default="text",
        help="text: stream node-0's log; json: wait, print a summary; yaml: with --dry-run",
    )
    parser.set_defaults(handler=train_command)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise KubelabError(f"{flag} {item!r}: expected NAME=VALUE", field=flag)
        pairs[name] = value
    return pairs


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if args.gpus_per_node:
        resources["gpu"] = args.gpus_per_node
    if args.cpu:
        resources["cpu"] = args.cpu
    if args.memory:
        resources["memory"] = args.memory
    spec: dict[str, Any] = {
        "path": args.source,
        "num_nodes": args.nodes,
        "nproc_per_node": args.nproc_per_node,
        "resources_per_node": resources,
        "parameters": _pairs(args.param, "--param"),
        "env": _pairs(args.env, "--env"),
        "packages_to_install": args.package,
        "api": args.api,
        "image": args.image,
        "runtime": args.runtime,
    }
    return {k: v for k, v in spec.items() if v not in (None, [], {})}


def dry_run(args: argparse.Namespace, spec: dict[str, Any]) -> int:
    import yaml

    from kubelab.workloads.base import ClusterContext
    from kubelab.workloads.trainer.workload import TrainingWorkload

    workload = TrainingWorkload()
    normalised = workload.validate(spec, Path.cwd())
    stem = "".join(c if c.isalnum() else "-" for c in Path(args.source).stem.lower())
    name = args.name or f"train-{stem}".replace("train-train", "train")[:63].rstrip("-")
    cluster = ClusterContext(
        namespace=args.namespace or os.environ.get("KUBELAB_NAMESPACE") or "default",
        image=args.image,
    )
    objects = workload.manifests(normalised, name=name, cluster=cluster)
    if args.output == "json":
        print(json.dumps(objects, indent=2))
    else:
        print(
            yaml.dump_all(objects, Dumper=_block_dumper(), sort_keys=False, allow_unicode=True),
            end="",
        )
    return 0


def _block_dumper() -> Any:
    import yaml

    class Dumper(yaml.SafeDumper):
        """Multi-line strings (the embedded program) as readable `|` blocks."""

    def text(dumper: yaml.SafeDumper, data: str) -> Any:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    return Dumper


def summary(job: dict[str, Any]) -> dict[str, Any]:
    from kubelab.workloads.trainer.types import STATUS_OF_STATE

    return {
        "name": job["id"],
        "state": STATUS_OF_STATE.get(job["state"], job["state"]),
        "backend": job.get("backend"),
        "steps": {
            s["name"]: {
                "state": STATUS_OF_STATE.get(s["state"], s["state"]),
                "duration_s": s.get("duration_s"),
                "device": s.get("device"),
            }
            for s in job.get("steps", [])
        },
        "metrics": job.get("metrics") or {},
        "error": job.get("error"),
    }


def train_command(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    if args.dry_run:
        return dry_run(args, spec)
    if args.output == "yaml":
        raise KubelabError("-o yaml goes with --dry-run (it prints the manifest)", field="output")
    from kubelab.client import Client

    client = Client(args.backend, namespace=args.namespace)
    job_id = client.create_job("training", spec, backend=args.backend, name=args.name)
    if args.detach:
        print(job_id)
        return 0
    try:
        if args.output == "text":
            print(f"kubelab: training job {job_id} started", file=sys.stderr)
            for chunk in client.stream_job_logs(job_id, "node-0"):
                sys.stdout.write(chunk)
                sys.stdout.flush()
        job = client.wait_for_job(job_id)
    except KeyboardInterrupt:
        client.cancel_job(job_id)
        raise
    result = summary(job)
    if args.output == "json":
        print(json.dumps(result, indent=2))
    else:
        print(f"kubelab: {job_id} {result['state']}", file=sys.stderr)
        if result["error"]:
            print(result["error"], file=sys.stderr)
    return 0 if result["state"] == "Complete" else 1
