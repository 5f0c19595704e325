"""A tuning job spec, checked and normalised before anything starts.

What arrives (REST `POST /kubelab/api/jobs {kind: "tuning", ...}`, the CLI, the
Python API) is either a Katib Experiment (`experiment`, or `experiment_path` to a
YAML file), or what to tune and how:

    {"name": "lr-search",
     "template": {"kind": "notebook", "path": "demo.ipynb"}      # or script / function
     "search_space": {"lr": {"type": "loguniform", "min": 1e-4, "max": 0.1},
                      "layers": {"type": "choice", "values": [1, 2, 3]}},
     "objectives": [{"metric": "loss", "direction": "minimize", "goal": 0.05}],
     "algorithm": {"name": "tpe", "settings": {"random_state": 1}},
     "early_stopping": {"name": "medianstop", "settings": {"start_step": 4}},
     "trial_config": {"num_trials": 20, "parallel_trials": 4, "max_failed_trials": 3},
     "resources_per_trial": {"cpu": "1", "memory": "2Gi", "gpu": 0}}

(search-space entries may also be Katib ParameterSpecs, and the algorithm a Katib
AlgorithmSpec). The normalised spec is `{name, template, experiment, value_kinds,
seed}`: the complete Katib Experiment (defaults applied, trials as Jobs running in
`/home/jovyan`) plus how to run it here. Paths are relative to the user's root and
may not leave it.
"""

from __future__ import annotations

import os
import random
import string
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from kubelab.pipelines.errors import ForbiddenError, KubelabError, NotFoundError
from kubelab.workloads.optimizer import experiment as katib
from kubelab.workloads.optimizer import validation
from kubelab.workloads.optimizer.templates import HOME_MOUNT, Placement, call_style, trial_template
from kubelab.workloads.optimizer.types import (
    ALGORITHMS,
    CATEGORICAL,
    DISCRETE,
    DOUBLE,
    INT,
    BaseAlgorithm,
    KatibAlgorithm,
    MedianStop,
    Objective,
    ParameterSpec,
    RandomSearch,
    Search,
    TrialConfig,
    algorithm_from_katib,
    parameter_from_katib,
)

TEMPLATE_KINDS = ("function", "script", "notebook", "training")


def new_name() -> str:
    """A job name as the Kubeflow SDK makes them: a letter and 11 hex digits."""
    return random.choice(string.ascii_lowercase) + uuid.uuid4().hex[:11]


def confined(path: str, root: Path, *, what: str) -> str:
    """`path` relative to `root` (POSIX), or a `KubelabError` if it leaves the root."""
    if not isinstance(path, str) or not path:
        raise KubelabError(f"{what} must be a path", field=what)
    full = (root / path).resolve()
    try:
        relative = full.relative_to(root)
    except ValueError:
        raise ForbiddenError(f"{what} {path!r} is outside your root {root}", field=what) from None
    if not full.exists():
        raise NotFoundError(f"{what} {path!r} does not exist", field=what, path=path)
    return PurePosixPath(*relative.parts).as_posix() or "."


def normalize(spec: dict[str, Any], root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise KubelabError("a tuning job spec must be a JSON object", field="")
    root = Path(root or os.getcwd()).resolve()
    if spec.get("experiment") is not None or spec.get("experiment_path"):
        return _from_experiment(spec, root)
    return _from_template(spec, root)


def _from_experiment(spec: dict[str, Any], root: Path) -> dict[str, Any]:
    workdir = "."
    experiment = spec.get("experiment")
    if experiment is None:
        relative = confined(spec["experiment_path"], root, what="experiment_path")
        experiment = load_experiment(root / relative)
        workdir = PurePosixPath(relative).parent.as_posix()
    if not isinstance(experiment, dict):
        raise KubelabError("experiment must be a Katib Experiment object", field="experiment")
    experiment = dict(experiment)
    metadata = dict(experiment.get("metadata") or {})
    metadata["name"] = spec.get("name") or metadata.get("name") or new_name()
    experiment["metadata"] = metadata
    exp = validation.validate(experiment, local=False)
    kinds = {
        p["name"]: "double"
        if p["parameterType"] == DOUBLE
        else "int"
        if p["parameterType"] == INT
        else "str"
        for p in exp["spec"]["parameters"]
    }
    return _normalized(
        metadata["name"], {"kind": "experiment", "workdir": workdir}, exp, kinds, spec
    )


def load_experiment(path: Path) -> dict[str, Any]:
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except yaml.YAMLError as error:
        raise KubelabError(
            f"{path.name} is not valid YAML: {error}", field="experiment_path"
        ) from None
    experiments = [d for d in documents if isinstance(d, dict) and d.get("kind") == katib.KIND]
    if len(experiments) != 1:
        raise KubelabError(
            f"{path.name} must hold one Katib Experiment (kind: Experiment), found {len(experiments)}",
            field="experiment_path",
        )
    return experiments[0]


def _normalized(
    name: str,
    template: dict[str, Any],
    exp: dict[str, Any],
    kinds: dict[str, str],
    spec: dict[str, Any],
) -> dict[str, Any]:
    seed = spec.get("seed")
    return {
        "name": name,
        "template": template,
        "experiment": exp,
        "value_kinds": kinds,
        "seed": int(seed) if isinstance(seed, int) else random.randrange(2**31),
    }


def _from_template(spec: dict[str, Any], root: Path) -> dict[str, Any]:
    template = dict(spec.get("template") or {})
    kind = template.get("kind")
    if kind not in TEMPLATE_KINDS:
        raise KubelabError(
            f"template.kind must be one of {', '.join(TEMPLATE_KINDS)} (or give an experiment), got {kind!r}",
            field="template.kind",
        )
    if kind == "function":
        if (
            not isinstance(template.get("source"), str)
            or not str(template.get("name", "")).isidentifier()
        ):
            raise KubelabError("a function template needs its source and name", field="template")
    elif kind == "training":
        _check_training(template.get("training"), list(spec.get("search_space") or {}))
    else:
        template["path"] = confined(template.get("path"), root, what="template.path")
    image = spec.get("image") or template.get("image")
    if image is not None:
        if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
            raise KubelabError(f"image {image!r} is not an image reference", field="image")
        template["image"] = image
    if template.get("workdir") is not None:
        template["workdir"] = confined(template["workdir"], root, what="template.workdir")
    resources = spec.get("resources_per_trial") or template.get("resources")
    if resources:
        template["resources"] = _resources(resources)
    search_space = parse_search_space(spec.get("search_space"))
    objectives = parse_objectives(spec.get("objectives") or spec.get("objective"))
    algorithm = parse_algorithm(spec.get("algorithm"))
    trial_config = parse_trial_config(spec.get("trial_config"))
    early = parse_early_stopping(spec.get("early_stopping"))
    if kind == "notebook":
        _check_notebook(root / template["path"], search_space, objectives)
    kinds = {n: p.value_kind for n, p in search_space.items()}
    name = spec.get("name") or new_name()
    experiment = katib.build_experiment(
        name,
        search_space=search_space,
        objectives=objectives,
        algorithm=algorithm,
        trial_config=trial_config,
        early_stopping=early,
        metrics_collector=spec.get("metrics_collector"),
        trial_template=trial_template(
            template, kinds, objectives[0].metric, Placement(None, HOME_MOUNT)
        ),
    )
    exp = validation.validate(experiment, local=False)
    return _normalized(name, template, exp, kinds, spec)


def _check_training(training: Any, names: list[str]) -> None:
    """A training template is a CustomTrainer's function job; the trainer calls the
    function with keyword arguments, so it must take the tuned names."""
    function = training.get("function") if isinstance(training, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("code"), str):
        raise KubelabError(
            "a training template runs a function: TrainJobTemplate(trainer=CustomTrainer(func=...))",
            field="template.training",
        )
    given = [*names, *(n for n in training.get("func_args") or {} if n not in names)]
    if call_style(function["code"], str(function.get("name")), given) != "kwargs":
        raise KubelabError(
            f"{function.get('name')}() must take the tuned names as arguments ({', '.join(names)}): "
            "the trainer calls it as func(**func_args)",
            field="template.training.function",
        )


def _resources(resources: Any) -> dict[str, Any]:
    if not isinstance(resources, dict) or set(resources) - {"cpu", "memory", "gpu"}:
        raise KubelabError(
            "resources_per_trial takes cpu, memory and gpu", field="resources_per_trial"
        )
    return {k: v for k, v in resources.items() if v not in (None, "", 0)}


# -- the parts ---------------------------------------------------------------------------


def parse_search_space(space: Any) -> dict[str, ParameterSpec]:
    if not isinstance(space, dict) or not space:
        raise KubelabError(
            "the search space is empty: give at least one parameter", field="search_space"
        )
    parsed: dict[str, ParameterSpec] = {}
    for name, entry in space.items():
        where = f"search_space.{name}"
        if not isinstance(name, str) or not name.isidentifier():
            raise KubelabError(f"parameter name {name!r} must be an identifier", field=where)
        if isinstance(entry, ParameterSpec):
            parsed[name] = entry
        elif isinstance(entry, dict) and "parameterType" in entry:
            parsed[name] = parameter_from_katib({"name": name, **entry})
        elif isinstance(entry, dict):
            parsed[name] = _short_form(entry, where)
        else:
            raise KubelabError(
                f"{where} must be a Search.* value or a mapping, got {entry!r}", field=where
            )
        p = parsed[name]
        if p.parameter_type not in (DOUBLE, INT, CATEGORICAL, DISCRETE):
            raise KubelabError(f"{where}: unknown parameterType {p.parameter_type!r}", field=where)
    return parsed


def _short_form(entry: dict[str, Any], where: str) -> ParameterSpec:
    kind = entry.get("type")

    def number(key: str) -> float:
        value = entry[key]
        return (
            value
            if isinstance(value, int | float) and not isinstance(value, bool)
            else float(value)
        )

    try:
        if kind == "uniform":
            return Search.uniform(number("min"), number("max"), entry.get("step"))
        if kind == "loguniform":
            return Search.loguniform(number("min"), number("max"))
        if kind == "randint":
            return Search.randint(int(entry["min"]), int(entry["max"]), entry.get("step"))
        if kind == "choice":
            values = entry["values"]
            if not isinstance(values, list) or not values:
                raise KubelabError(
                    f"{where}.values must list at least one value", field=f"{where}.values"
                )
            return Search.choice(values)
    except KeyError as missing:
        raise KubelabError(f"{where} needs {missing.args[0]}", field=where) from None
    except (TypeError, ValueError) as error:
        raise KubelabError(f"{where}: {error}", field=where) from None
    raise KubelabError(
        f"{where}.type must be uniform, loguniform, randint or choice, got {kind!r}",
        field=f"{where}.type",
    )


def parse_objectives(value: Any) -> list[Objective]:
    if value is None:
        return [Objective()]
    items = value if isinstance(value, list) else [value]
    objectives = []
    for i, item in enumerate(items):
        if isinstance(item, Objective):
            objectives.append(item)
            continue
        if not isinstance(item, dict) or not item.get("metric"):
            raise KubelabError(
                f"objectives[{i}] needs a metric name", field=f"objectives[{i}].metric"
            )
        goal = item.get("goal")
        objectives.append(
            Objective(
                metric=str(item["metric"]),
                direction=item.get("direction", "minimize"),
                goal=float(goal) if goal not in (None, "") else None,
                strategy=item.get("strategy") or None,
            )
        )
    return objectives


def parse_algorithm(value: Any) -> BaseAlgorithm:
    if value is None:
        return RandomSearch()
    if isinstance(value, BaseAlgorithm):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise KubelabError(
            f"algorithm must be a name or a mapping, got {value!r}", field="algorithm"
        )
    if "algorithmName" in value:
        parsed = algorithm_from_katib(value)
    else:
        name = value.get("name")
        settings = value.get("settings") or {}
        parsed = algorithm_from_katib(
            {
                "algorithmName": name,
                "algorithmSettings": [{"name": k, "value": str(v)} for k, v in settings.items()],
            }
        )
        known = ALGORITHMS.get(name)
        if known is not None:
            unknown = sorted(
                set(settings) - {f for f in known.__dataclass_fields__ if f != "multivariate"}
            )
            if unknown:
                raise KubelabError(
                    f"unknown setting(s) {', '.join(unknown)} for algorithm {name}",
                    field="algorithm.settings",
                )
    if isinstance(parsed, KatibAlgorithm) and parsed.name not in validation.KATIB_ALGORITHMS:
        raise KubelabError(
            f"unknown algorithm {parsed.name!r}; algorithms: {', '.join(validation.LOCAL_ALGORITHMS)} "
            f"(on Katib also: {', '.join(sorted(set(validation.KATIB_ALGORITHMS) - set(validation.LOCAL_ALGORITHMS)))})",
            field="algorithm",
        )
    return parsed


def parse_trial_config(value: Any) -> TrialConfig:
    if value is None:
        return TrialConfig()
    if isinstance(value, TrialConfig):
        return value
    if not isinstance(value, dict):
        raise KubelabError("trial_config must be a mapping", field="trial_config")
    try:
        return TrialConfig(
            num_trials=int(value.get("num_trials", 10)),
            parallel_trials=int(value.get("parallel_trials", 1)),
            max_failed_trials=None
            if value.get("max_failed_trials") is None
            else int(value["max_failed_trials"]),
        )
    except (TypeError, ValueError) as error:
        raise KubelabError(f"trial_config: {error}", field="trial_config") from None


def parse_early_stopping(value: Any) -> MedianStop | None:
    if value is None or isinstance(value, MedianStop):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or value.get("name", "medianstop") != "medianstop":
        raise KubelabError(
            f"unknown early stopping {value!r}; algorithms: medianstop", field="early_stopping"
        )
    settings = value.get("settings") or {}
    try:
        return MedianStop(**{k: int(v) for k, v in settings.items()})
    except TypeError as error:
        raise KubelabError(f"early_stopping: {error}", field="early_stopping.settings") from None


def _check_notebook(
    path: Path, space: dict[str, ParameterSpec], objectives: list[Objective]
) -> None:
    """Tuned names must be pipeline parameters of a matching type; the objective one of
    its pipeline metrics (or printed by a step: then only a warning-free trust)."""
    from kubelab.pipelines.notebook import compile_notebook

    nb = compile_notebook(str(path))
    declared = nb.parameters
    for name, p in space.items():
        if name not in declared:
            raise KubelabError(
                f"{name!r} is not a pipeline parameter of {path.name}; its pipeline-parameters cell "
                f"defines: {', '.join(declared) or 'nothing'}",
                field=f"search_space.{name}",
            )
        kind = declared[name]["type"]
        if kind == "int" and p.parameter_type == DOUBLE:
            raise KubelabError(
                f"{name!r} is an int in {path.name}; search it with Search.randint or Search.choice",
                field=f"search_space.{name}",
            )
        if kind == "bool" and p.parameter_type in (DOUBLE, INT):
            raise KubelabError(
                f"{name!r} is a bool in {path.name}; search it with Search.choice([True, False])",
                field=f"search_space.{name}",
            )
    metric = objectives[0].metric
    if nb.metrics and metric not in nb.metrics:
        raise KubelabError(
            f"{metric!r} is not among the notebook's pipeline-metrics ({', '.join(nb.metrics)})",
            field="objectives[0].metric",
        )
