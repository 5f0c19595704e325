"""Trial templates for what a data scientist tunes: a function, a script, a notebook.

Each becomes the `trialTemplate` of a Katib Experiment whose trials are batch Jobs
in the user's namespace, running in the notebook's image with the user's home
volume, so the YAML that `kubelab tune --dry-run -o yaml` prints is what a cluster
runs. Locally the same primary container command runs as a process (notebooks run
as local pipeline runs instead, to reuse the step cache).

- a function `f(parameters: dict)` (or `f(lr, layers)`, the tuned names as arguments)
  travels as its source in `python -c`, followed by
  a standard-library launcher: trials need no kubelab in their image. Katib's
  string assignments are turned back into floats, ints and choice values; what `f`
  returns (a number for the objective, or a dict of metrics) is printed as
  `name=value`, as are `report()` calls inside it.
- a script gets `--name=value` arguments;
- a notebook runs as a pipeline with the trial's parameters
  (`python -m kubelab.workloads.optimizer.trial notebook PATH name=value...`).
"""

from __future__ import annotations

import ast
import dis
import inspect
import json
import posixpath
import textwrap
from dataclasses import dataclass
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.optimizer.experiment import placeholder

CONTAINER = "training-container"
HOME_MOUNT = "/home/jovyan"  # where the spawner mounts the user's volume
LOCAL_IMAGE = "local"  # what the image field says when trials run on this machine

# Runs after the function's source in `python -c`; argv[1] is the trial config, the
# rest are name=value assignments. Standard library only.
LAUNCHER = """
def _kubelab_trial():
    import ast, json, math, sys
    config = json.loads(sys.argv[1])
    cast = {"double": float, "int": lambda t: int(float(t)), "number": ast.literal_eval, "literal": ast.literal_eval}
    params = {}
    for pair in sys.argv[2:]:
        name, _, text = pair.partition("=")
        params[name] = cast.get(config["types"].get(name), str)(text)
    function = globals()[config["function"]]
    result = function(**params) if config.get("call") == "kwargs" else function(params)
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        result = {config["metric"]: result}
    if isinstance(result, dict):
        pairs = []
        for key, value in result.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                pairs.append(f"{key}={float(value)!r}")
        if pairs:
            print(" ".join(pairs), flush=True)


_kubelab_trial()
"""


@dataclass
class Placement:
    """Where a trial container runs: its image, and where the user's root is inside it
    (`/home/jovyan` from the user's PVC on a cluster; the root itself on this machine)."""

    image: str | None
    root: str
    pvc: str | None = None

    def path(self, relative: str) -> str:
        return posixpath.normpath(posixpath.join(self.root, relative))


def function_source(fn: Any) -> tuple[str, str]:
    """(source, name) of a trial function, or a `KubelabError` saying why it cannot
    travel: it must be a plain `def` whose names are its own (trials run it in a fresh
    process, on a cluster in another machine, as Kubeflow does)."""
    if not inspect.isfunction(fn) or fn.__name__ == "<lambda>":
        raise KubelabError(
            f"the trial template must be a function defined with def, got {fn!r}",
            field="trial_template",
        )
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as error:
        raise KubelabError(
            f"cannot read the source of {fn.__name__}(): {error}", field="trial_template"
        ) from None
    outside = sorted(
        (set(_global_names(fn.__code__)) & set(fn.__globals__)) - {fn.__name__}
        | set(inspect.getclosurevars(fn).nonlocals)
    )
    if outside:
        raise KubelabError(
            f"{fn.__name__}() uses {', '.join(outside)} from outside the function; trials run it "
            "alone in a fresh process, so import and define what it needs inside it",
            field="trial_template",
            names=outside,
        )
    if source.lstrip().startswith("@"):
        raise KubelabError(
            f"{fn.__name__}() is decorated; pass the plain function", field="trial_template"
        )
    return source, fn.__name__


def call_style(source: str, function: str, names: list[str]) -> str:
    """How a trial calls the function: "dict" (`f(parameters)`, one argument that is not
    a tuned name) or "kwargs" (`f(lr=..., layers=...)`); a `KubelabError` when neither fits."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise KubelabError(
            f"the function source does not parse: {error}", field="template.source"
        ) from None
    fn = next(
        (
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == function
        ),
        None,
    )
    if fn is None:
        raise KubelabError(f"the source defines no function {function!r}", field="template.name")
    args = fn.args
    positional = [a.arg for a in [*args.posonlyargs, *args.args]]
    accepted = set(positional + [a.arg for a in args.kwonlyargs])
    if len(positional) == 1 and not args.kwonlyargs and positional[0] not in names:
        return "dict"
    missing = [n for n in names if n not in accepted]
    required = [a for a in positional[: len(positional) - len(args.defaults)] if a not in names]
    required += [
        a.arg
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
        if d is None and a.arg not in names
    ]
    if (missing and args.kwarg is None) or required or args.posonlyargs:
        raise KubelabError(
            f"{function}() must take the dict of parameters (def {function}(parameters)) or the "
            f"tuned names as arguments ({', '.join(names)})"
            + (
                f"; it does not accept {', '.join(missing)}"
                if missing and args.kwarg is None
                else ""
            )
            + (f"; it also requires {', '.join(required)}" if required else ""),
            field="trial_template",
        )
    return "kwargs"


def _global_names(code: Any) -> list[str]:
    """Names the function (and functions nested in it) read from module globals."""
    names = [
        i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    ]
    for const in code.co_consts:
        if inspect.iscode(const):
            names += _global_names(const)
    return names


def _container(
    placement: Placement,
    command: list[str],
    args: list[str],
    *,
    workdir: str | None,
    resources: dict[str, Any] | None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": placement.image or LOCAL_IMAGE,
        "command": command,
        "args": args,
    }
    if workdir is not None:
        container["workingDir"] = placement.path(workdir)
    if resources:
        container["resources"] = _resources(resources)
    if placement.pvc:
        container["volumeMounts"] = [{"name": "home", "mountPath": placement.root}]
    return container


def _resources(resources: dict[str, Any]) -> dict[str, Any]:
    """`{cpu, memory, gpu}` as Kubernetes limits/requests (quantities as strings; GPU
    requests equal to limits, as the device plugin requires)."""
    limits: dict[str, str] = {}
    for key in ("cpu", "memory"):
        if resources.get(key) not in (None, ""):
            limits[key] = str(resources[key])
    if resources.get("gpu"):
        limits["nvidia.com/gpu"] = str(int(resources["gpu"]))
    return {"limits": limits, "requests": dict(limits)}


def _job(placement: Placement, container: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if placement.pvc:
        pod["volumes"] = [{"name": "home", "persistentVolumeClaim": {"claimName": placement.pvc}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "backoffLimit": 0,  # a failed trial is a result, not something to retry
            "template": {
                "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}},
                "spec": pod,
            },
        },
    }


def training_spec(template: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """The training job spec of one trial: the template's, with the trial's arguments."""
    training = dict(template["training"])
    training["func_args"] = {**(training.get("func_args") or {}), **arguments}
    return training


def training_trial_template(
    template: dict[str, Any], value_kinds: dict[str, str], placement: Placement
) -> dict[str, Any]:
    """Trials as the trainer's TrainJob (or PyTorchJob), the tuned names in `func_args`.

    The arguments travel as JSON in the trainer's environment; numeric placeholders are
    left unquoted there, so after Katib's substitution the function gets numbers."""
    from kubelab.workloads.base import ClusterContext
    from kubelab.workloads.trainer.workload import TrainingWorkload

    names = list(value_kinds)
    workload = TrainingWorkload()
    spec = workload.validate(training_spec(template, {n: placeholder(n) for n in names}))
    cluster = ClusterContext(namespace="", image=placement.image, pvc=placement.pvc)
    [job] = workload.manifests(spec, name="kubelab-trial", cluster=cluster)
    job["metadata"] = {"labels": job["metadata"].get("labels", {})}  # Katib names each trial
    text = json.dumps(job)
    for name, kind in value_kinds.items():
        if kind in ("double", "int", "number"):
            text = text.replace('\\"' + placeholder(name) + '\\"', placeholder(name))
    primary = "node" if job["kind"] == "TrainJob" else "pytorch"
    return {**_template(names, json.loads(text)), "primaryContainerName": primary}


def _template(names: list[str], trial_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "primaryContainerName": CONTAINER,
        "trialParameters": [{"name": n, "reference": n} for n in names],
        "trialSpec": trial_spec,
    }


def trial_template(
    template: dict[str, Any],
    value_kinds: dict[str, str],
    objective_metric: str,
    placement: Placement,
) -> dict[str, Any]:
    """The Katib `trialTemplate` for a kubelab template (`spec["template"]`)."""
    names = list(value_kinds)
    kind = template["kind"]
    resources = template.get("resources")
    workdir = template.get("workdir")
    if kind == "function":
        config = {
            "function": template["name"],
            "call": call_style(template["source"], template["name"], names),
            "types": value_kinds,
            "metric": objective_metric,
        }
        command = ["python", "-c", template["source"].rstrip() + "\n\n" + LAUNCHER]
        args = [json.dumps(config, separators=(",", ":"))]
        args += [f"{n}={placeholder(n)}" for n in names]
    elif kind == "script":
        command = ["python", placement.path(template["path"])]
        args = [f"--{n}={placeholder(n)}" for n in names]
        workdir = workdir or posixpath.dirname(template["path"])
    elif kind == "notebook":
        command = [
            "python",
            "-m",
            "kubelab.workloads.optimizer.trial",
            "notebook",
            placement.path(template["path"]),
        ]
        args = [f"{n}={placeholder(n)}" for n in names]
        workdir = workdir or posixpath.dirname(template["path"])
    elif kind == "training":
        return training_trial_template(template, value_kinds, placement)
    else:
        raise KubelabError(f"unknown trial template kind {kind!r}", field="template.kind")
    container = _container(placement, command, args, workdir=workdir, resources=resources)
    return _template(names, _job(placement, container))
