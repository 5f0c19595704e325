"""`kubelab tune`: tune a notebook, a script, a function or a Katib Experiment YAML.

    kubelab tune demo.ipynb --search n_estimators='randint(10,200)' --objective forest_accuracy \\
        --direction maximize --algorithm tpe --trials 12 --parallel 4
    kubelab tune train.py:objective --search lr='loguniform(1e-4,1e-1)' --output json
    kubelab tune experiment.yaml                     # its trials as local processes
    kubelab tune experiment.yaml --backend kubernetes --dry-run -o yaml
    kubelab tune --resume NAME                        # after a restart

`--output json` waits and prints `{name, state, best: {parameters, metrics}, trials}`;
the exit code is 0 only when the experiment succeeded.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from kubelab.pipelines.errors import KubelabError, NotFoundError

_SEARCH = re.compile(r"^\s*(uniform|loguniform|randint|choice)\s*\((.*)\)\s*$", re.S)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tune",
        help="tune hyperparameters: trials in parallel here, or a Katib Experiment",
        description="Tune a notebook (its pipeline parameters), a script (--name=value "
        "arguments), FILE.py:FUNCTION (a function of the parameters dict) or run a Katib "
        "Experiment YAML. Trials print metrics as name=value lines (Katib's format).",
    )
    p.add_argument(
        "source", nargs="?", help="NOTEBOOK.ipynb, SCRIPT.py, FILE.py:FUNCTION or EXPERIMENT.yaml"
    )
    p.add_argument(
        "--search",
        "-s",
        action="append",
        default=[],
        metavar="NAME=SPACE",
        help="a search-space dimension: uniform(MIN,MAX[,STEP]), loguniform(MIN,MAX), "
        "randint(MIN,MAX), choice(A,B,...) (repeatable)",
    )
    p.add_argument("--objective", default="loss", help="the metric to optimize (default: loss)")
    p.add_argument("--direction", choices=("minimize", "maximize"), default="minimize")
    p.add_argument("--goal", type=float, help="stop once a trial reaches this objective value")
    p.add_argument(
        "--metric", action="append", default=[], help="another metric to record (repeatable)"
    )
    p.add_argument(
        "--algorithm",
        default="random",
        help="random, grid, tpe, multivariate-tpe or cmaes (on Katib also its others)",
    )
    p.add_argument(
        "--setting", action="append", default=[], metavar="NAME=VALUE", help="an algorithm setting"
    )
    p.add_argument("--seed", type=int, help="the algorithm's random_state")
    p.add_argument("--trials", type=int, default=10, help="how many trials (default 10)")
    p.add_argument("--parallel", type=int, default=1, help="trials at once (default 1)")
    p.add_argument(
        "--max-failed", type=int, help="end the experiment as failed after this many failed trials"
    )
    p.add_argument(
        "--early-stopping",
        metavar="medianstop[:MIN_TRIALS:START_STEP]",
        help="Katib's median stopping rule (defaults 3 and 4)",
    )
    p.add_argument("--name", help="the experiment's name (default: generated)")
    p.add_argument("--backend", choices=("local", "kubernetes"), default="local")
    p.add_argument(
        "--dry-run", action="store_true", help="print the Experiment instead of running it"
    )
    p.add_argument(
        "-o",
        "--output",
        choices=("text", "json", "yaml"),
        help="with --dry-run: yaml (default) or json manifests; else text (default) or a "
        "json summary at the end",
    )
    p.add_argument(
        "--namespace",
        help="namespace of the Experiment (default: from the kube config, or default)",
    )
    p.add_argument("--image", help="image of the trials (default: this notebook server's)")
    p.add_argument("--pvc", help="the user's volume, mounted at /home/jovyan in trials")
    p.add_argument("--resume", metavar="NAME", help="resume an interrupted local experiment")
    p.set_defaults(handler=tune_command)


# -- spec from arguments ---------------------------------------------------------------


def parse_space(text: str) -> tuple[str, dict[str, Any]]:
    name, sep, space = text.partition("=")
    match = _SEARCH.match(space)
    if not sep or not name.strip().isidentifier() or match is None:
        raise KubelabError(
            f"--search wants NAME=uniform(MIN,MAX), loguniform(MIN,MAX), randint(MIN,MAX) or "
            f"choice(A,B,...), got {text!r}",
            field="search",
        )
    kind, inner = match.group(1), match.group(2)
    values = [_literal(v) for v in _split(inner)]
    if kind == "choice":
        return name.strip(), {"type": kind, "values": values}
    if len(values) not in (2, 3) or not all(isinstance(v, int | float) for v in values):
        raise KubelabError(
            f"--search {name}: {kind} takes MIN,MAX[,STEP] numbers, got {inner!r}", field="search"
        )
    entry: dict[str, Any] = {"type": kind, "min": values[0], "max": values[1]}
    if len(values) == 3:
        entry["step"] = values[2]
    return name.strip(), entry


def _split(inner: str) -> list[str]:
    return [part.strip() for part in inner.split(",") if part.strip()]


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _template(source: str, root: Path) -> dict[str, Any]:
    path_text, _, function = source.partition(":")
    path = Path(path_text)
    if not path.exists():
        raise NotFoundError(f"no such file: {path_text}", path=path_text)
    relative = os.path.relpath(path.resolve(), root)
    if function:
        from kubelab.workloads.optimizer.templates import function_source

        spec = importlib.util.spec_from_file_location(f"_kubelab_tune_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise KubelabError(f"cannot load {path_text}", path=path_text)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, function, None)
        if fn is None:
            raise KubelabError(f"{path_text} has no function {function!r}", field="source")
        code, name = function_source(fn)
        return {"kind": "function", "source": code, "name": name}
    if path.suffix == ".ipynb":
        return {"kind": "notebook", "path": relative}
    if path.suffix == ".py":
        return {"kind": "script", "path": relative}
    raise KubelabError(
        f"cannot tune {source}: give NOTEBOOK.ipynb, SCRIPT.py, FILE.py:FUNCTION or EXPERIMENT.yaml",
        field="source",
    )


def build_spec(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    if not args.source:
        raise KubelabError("kubelab tune needs a SOURCE (or --resume NAME)")
    if Path(args.source).suffix in (".yaml", ".yml"):
        if args.search:
            raise KubelabError(
                "an Experiment YAML declares its own parameters; drop --search", field="search"
            )
        path = Path(args.source)
        if not path.exists():
            raise NotFoundError(f"no such file: {args.source}", path=args.source)
        spec: dict[str, Any] = {"experiment_path": os.path.relpath(path.resolve(), root)}
        if args.name:
            spec["name"] = args.name
        return spec
    settings = dict(_pair(s, "--setting") for s in args.setting)
    if args.seed is not None:
        settings["random_state"] = args.seed
    early = None
    if args.early_stopping:
        name, *numbers = args.early_stopping.split(":")
        keys = ("min_trials_required", "start_step")
        early = {"name": name, "settings": {k: int(v) for k, v in zip(keys, numbers, strict=False)}}
    return {
        "name": args.name,
        "image": args.image,
        "template": _template(args.source, root),
        "search_space": dict(parse_space(s) for s in args.search) if args.search else None,
        "objectives": [
            {"metric": args.objective, "direction": args.direction, "goal": args.goal},
            *({"metric": m, "direction": args.direction} for m in args.metric),
        ],
        "algorithm": {"name": args.algorithm, "settings": settings},
        "early_stopping": early,
        "trial_config": {
            "num_trials": args.trials,
            "parallel_trials": args.parallel,
            "max_failed_trials": args.max_failed,
        },
    }


def _pair(text: str, flag: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise KubelabError(f"{flag} wants NAME=VALUE, got {text!r}")
    return name, _literal(value)


# -- running ---------------------------------------------------------------------------


def cluster_context(args: argparse.Namespace) -> Any:
    from kubelab.workloads.base import ClusterContext

    namespace = args.namespace
    if not namespace:
        try:
            from kubernetes import config

            _, context = config.list_kube_config_contexts()
            namespace = (context or {}).get("context", {}).get("namespace")
        except Exception:  # no kube config: the default namespace
            namespace = None
    image = args.image or os.environ.get("JUPYTER_IMAGE_SPEC") or os.environ.get("JUPYTER_IMAGE")
    return ClusterContext(namespace=namespace or "default", image=image, pvc=args.pvc)


def dump_yaml(objects: list[dict[str, Any]]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return "---\n".join(yaml.dump(o, Dumper=Dumper, sort_keys=False) for o in objects)


def tune_command(args: argparse.Namespace) -> int:
    from kubelab.workloads.optimizer.client import OptimizerClient
    from kubelab.workloads.optimizer.workload import TuningWorkload

    root = Path.cwd().resolve()
    if args.resume:
        client = OptimizerClient(root=root)
        name = client.resume_job(args.resume)
        return _follow(client, name, args)
    spec = build_spec(args, root)
    if args.dry_run:
        workload = TuningWorkload()
        normalized = workload.validate(spec, root)
        if args.backend == "local":
            objects = [workload.local_experiment(normalized, _local_context(root))]
        else:
            objects = workload.manifests(
                normalized, name=normalized["name"], cluster=cluster_context(args)
            )
        if args.output == "json":
            print(json.dumps(objects if len(objects) > 1 else objects[0], indent=2))
        else:
            sys.stdout.write(dump_yaml(objects))
        return 0
    client = OptimizerClient(args.backend, root=root)
    name = client.create(spec)
    return _follow(client, name, args)


def _local_context(root: Path) -> Any:
    from kubelab.client.store import RunStore, kubelab_home
    from kubelab.workloads.base import LocalContext

    return LocalContext(store=RunStore(), home=kubelab_home(), root=root)


def _follow(client: Any, name: str, args: argparse.Namespace) -> int:
    from kubelab.client.store import FINAL_STATES
    from kubelab.workloads.optimizer.runner import runner_for
    from kubelab.workloads.optimizer.view import summary

    where = "locally" if client.backend == "local" else f"as a Katib Experiment ({client.backend})"
    print(f"tuning {name} {where}", file=sys.stderr)
    if client.backend == "local":
        print(f"  (kubelab tune --resume {name} continues it after a restart)", file=sys.stderr)
    runner = runner_for(name)
    shown: set[str] = set()
    try:
        while True:
            job = client.describe_job(name)
            _print_trials(job, shown)
            if job["state"] in FINAL_STATES:
                break
            if runner is not None:
                runner.finished.wait(0.2)
            else:
                time.sleep(2)
    except KeyboardInterrupt:
        print(f"cancelling {name}...", file=sys.stderr)
        client.cancel_job(name)
    job = client.describe_job(name)
    _print_trials(job, shown)
    view = job["tuning"]
    if args.output == "json":
        print(json.dumps(summary(job), indent=2, default=str))
    else:
        best = view["best"]
        print(f"{name} {job['state']}: {view['message']}", file=sys.stderr)
        if best:
            print(
                f"best {view['objective']['metric']} {best['objective']:.6g} ({best['trial']}): "
                f"{json.dumps(best['parameters'], default=str)}",
                file=sys.stderr,
            )
    return 0 if job["state"] == "succeeded" else 1


def _print_trials(job: dict[str, Any], shown: set[str]) -> None:
    for trial in job["tuning"]["trials"]:
        if trial["name"] in shown or trial["state"] in ("pending", "running"):
            continue
        shown.add(trial["name"])
        value = "" if trial["objective"] is None else f"{trial['objective']:.6g}"
        duration = "" if trial["duration_s"] is None else f" {trial['duration_s']:.2f}s"
        note = (
            f" — {trial['error']}" if trial["error"] and trial["condition"] != "Succeeded" else ""
        )
        params = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in trial["parameters"].items()
        )
        print(
            f"  {trial['name']} {trial['condition']:<12} {value:>12} {params}{duration}{note}",
            file=sys.stderr,
        )
