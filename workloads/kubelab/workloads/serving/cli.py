"""`kubelab serve PATH --name NAME`: a model server from the terminal.

Returns once the model answers (exit 0, the URL printed) or with the reason it does
not (exit 1: the model failed to load, the port is taken). `--dry-run -o yaml` prints
the InferenceService that `--backend kubernetes` would create. Listing, logs, stop
(`cancel`) and delete are the generic `kubelab jobs ...` commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from kubelab.pipelines.errors import KubelabError

from .modelfiles import FORMATS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over the Open Inference Protocol (v2) and KServe v1",
        description="Serve a model file or directory: on this machine as a local model server "
        "on 127.0.0.1 (it keeps running after this command returns), or on Kubernetes as a "
        "KServe InferenceService. Stop it with `kubelab jobs cancel NAME`.",
    )
    parser.add_argument(
        "model",
        help="model file or directory (.joblib/.pkl, .json/.ubj, .txt, .pt/.pt2, "
        "a notebook step's output, or a .py file, optionally FILE.py:ClassName)",
    )
    parser.add_argument("--name", help="model name, in /v2/models/NAME (default: the file's)")
    parser.add_argument("--format", choices=FORMATS, help="default: from the file")
    parser.add_argument("--port", type=int, help="local port (default: a free one)")
    parser.add_argument(
        "--predict-proba", action="store_true", help="sklearn: answer with predict_proba"
    )
    parser.add_argument("--backend", choices=("local", "kubernetes"), default=None)
    parser.add_argument("--namespace", help="Kubernetes namespace (default: your own)")
    parser.add_argument("--runtime", choices=("kserve", "kubelab"), help="Kubernetes runtime")
    parser.add_argument("--cpu", help="CPU on Kubernetes, e.g. 1 or 500m (default: profile's)")
    parser.add_argument("--memory", help="memory on Kubernetes, e.g. 2Gi (default: profile's)")
    parser.add_argument("--gpu", type=int, help="GPUs on Kubernetes (default: the profile's)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for ready")
    parser.add_argument("--dry-run", action="store_true", help="print the InferenceService only")
    parser.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text")
    parser.set_defaults(handler=serve_command)


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from .api import default_name

    resources = {
        k: v
        for k, v in (("cpu", args.cpu), ("memory", args.memory), ("gpu", args.gpu))
        if v is not None
    }
    spec: dict[str, Any] = {
        "name": args.name or default_name(args.model.rpartition(":")[0] or args.model),
        "model": os.path.abspath(args.model),  # relative to where the command runs
        "format": args.format,
        "port": args.port,
        "predict_proba": args.predict_proba or None,
        "runtime": args.runtime,
        "resources": resources or None,
    }
    return {k: v for k, v in spec.items() if v is not None}


def dry_run(args: argparse.Namespace, spec: dict[str, Any]) -> int:
    import yaml

    from kubelab.client import Client

    from .api import manifests, user_root

    objects = manifests(Client("kubernetes", namespace=args.namespace, root=user_root()), spec)
    if args.output == "json":
        print(json.dumps(objects, indent=2))
    else:
        print(yaml.safe_dump_all(objects, sort_keys=False), end="")
    return 0


def serve_command(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    if args.dry_run:
        return dry_run(args, spec)
    if args.output == "yaml":
        raise KubelabError("-o yaml goes with --dry-run (it prints the InferenceService)")
    from kubelab.client import Client

    from .api import ModelServer, server_url, start, user_root

    client = Client(args.backend, namespace=args.namespace, root=user_root())
    name = start(client, spec, args.backend)
    server = ModelServer(name, client)
    try:
        server.wait_ready(args.timeout)
    except KubelabError as error:
        print(f"kubelab: error: {error.message}", file=sys.stderr)
        return 1
    job = server.job()
    url = server_url(job)
    step = next((s for s in job["steps"] if s["name"] == "server"), {})
    if args.output == "json":
        print(
            json.dumps(
                {
                    "name": name,
                    "state": job["state"],
                    "backend": job["backend"],
                    "url": url,
                    "pid": (step.get("outputs") or {}).get("pid"),
                    "format": (job.get("spec") or {}).get("format"),
                }
            )
        )
        return 0
    print(
        f"model server {name} is ready ({(job.get('spec') or {}).get('format')}, {job['backend']})"
    )
    print(f"  url      {url}")
    print(f"  metadata curl {url}/v2/models/{name}")
    print(f"  infer    curl {url}/v2/models/{name}/infer -d @request.json")
    print(f"  stop     kubelab jobs cancel {name}")
    if os.environ.get("JUPYTERHUB_SERVICE_PREFIX"):
        prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"].rstrip("/")
        print(f"  browser  {prefix}/kubelab/api/serving/{name}/v2/models/{name}")
    return 0
