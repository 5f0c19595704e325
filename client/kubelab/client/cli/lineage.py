"""`kubelab runs compare | lineage | reproduce | export`: what changed, where from, again.

Text output marks a changed row with `*` (as a diff would) and names runs A, B, C...
in column order; `--output json` prints what `Client` returns (the REST API's JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kubelab.client.cli.common import add_output_option, client_from, print_json, when

WIDTH = 22


def register(runs_sub: Any) -> None:
    compare_p = runs_sub.add_parser(
        "compare",
        help="parameters, metrics, code, input data and outputs of runs side by side",
        description="Compare 2 to 10 runs (or jobs, or job steps such as tuning trials, "
        "named JOB/STEP): parameters and metrics with differences marked, metric series, "
        "which steps' code changed (with a diff of the cells), which input data changed, "
        "which steps were cached.",
    )
    compare_p.add_argument("runs", nargs="+", metavar="RUN", help="run ids (unique prefixes work)")
    compare_p.add_argument(
        "--all", action="store_true", help="show unchanged rows too (text output)"
    )
    add_output_option(compare_p)
    compare_p.set_defaults(handler=compare_command)

    lineage_p = runs_sub.add_parser(
        "lineage",
        help="where an artifact (or a run) came from",
        description="The step and run that produced an artifact, its inputs and their "
        "producers, back to the source snapshot, parameters and environment. REF: a run id, "
        "RUN/STEP/OUTPUT, a file path (found by path, else by content), an artifact id or "
        "a digest.",
    )
    lineage_p.add_argument("ref", metavar="REF")
    add_output_option(lineage_p)
    lineage_p.set_defaults(handler=lineage_command)

    reproduce_p = runs_sub.add_parser(
        "reproduce",
        help="re-run a run's stored snapshot and check its outputs' digests",
        description="Run the pipeline snapshot a run recorded, with its parameters and "
        "without the cache, then compare every output artifact's digest with the original "
        "run's. Exit status 0 when all match, 1 when one differs.",
    )
    reproduce_p.add_argument("run")
    reproduce_p.add_argument("--timeout", type=float, help="seconds to wait for the re-run")
    add_output_option(reproduce_p)
    reproduce_p.set_defaults(handler=reproduce_command)

    export_p = runs_sub.add_parser(
        "export",
        help="write runs to an MLflow tracking store",
        description="Write runs (default: all local runs and jobs) to MLflow: parameters, "
        "metrics with their steps, lineage as tags, artifacts. Needs `pip install "
        "kubelab[mlflow]`.",
    )
    export_p.add_argument("runs", nargs="*", metavar="RUN")
    export_p.add_argument(
        "--mlflow",
        required=True,
        metavar="URI",
        help="MLflow tracking URI: a folder or file:// URI (a file store), sqlite:///..., "
        "http://...",
    )
    export_p.add_argument(
        "--no-artifacts", action="store_true", help="parameters, metrics and tags only"
    )
    add_output_option(export_p)
    export_p.set_defaults(handler=export_command)


# -- compare ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


def _short(digest: str | None) -> str:
    if not digest:
        return "-"
    algorithm, _, value = digest.rpartition(":")
    return f"{algorithm}:{value[:12]}" if algorithm else value[:12]


def _line(mark: bool, label: str, values: list[Any], note: str = "") -> str:
    cells = "".join(f"{_cell(v):<{WIDTH + 2}}" for v in values)
    return f"{'*' if mark else ' '} {label:<28.28} {cells}{note}".rstrip()


def render_compare(comparison: dict[str, Any], *, show_all: bool = False) -> str:
    runs = comparison["runs"]
    letters = [chr(ord("A") + i) for i in range(len(runs))]
    out: list[str] = []
    for letter, run in zip(letters, runs, strict=True):
        source = run["source"] or {}
        git = source.get("git") or {}
        where = source.get("path") or "-"
        if git:
            where += f" @ {git['commit'][:10]}{' (dirty)' if git.get('dirty') else ''}"
        out.append(
            f"{letter}: {run['ref']}  {run['name']}  {run['state']}  {when(run['created_at'])}  "
            f"experiment {run['experiment'] or '-'}  user {run['user'] or '-'}  {where}"
        )
    out.append("")
    out.append(_line(False, "", letters))
    out.append("")
    env = comparison["environment"]
    out.append(
        _line(
            comparison["source_changed"],
            "source",
            [_short((r["source"] or {}).get("digest")) for r in runs],
        )
    )
    out.append(_line(env["changed"], "environment", [_short(d) for d in env["digests"]]))
    for i, difference in enumerate(env["differences"]):
        if difference:
            parts = [
                *(f"+{d}" for d in difference["added"]),
                *(f"-{d}" for d in difference["removed"]),
                *difference["changed"],
            ]
            out.append(f"    {letters[i]} vs A: {', '.join(parts[:12])}")

    def section(title: str, rows: list[dict[str, Any]], label: Any, values: Any) -> None:
        shown = [r for r in rows if show_all or r["changed"]]
        hidden = len(rows) - len(shown)
        if not rows:
            return
        out.append("")
        out.append(title + (f"  ({hidden} unchanged, --all shows them)" if hidden else ""))
        for row in shown:
            out.append(_line(row["changed"], label(row), values(row)))

    section("PARAMETERS", comparison["parameters"], lambda r: r["name"], lambda r: r["values"])
    section("METRICS", comparison["metrics"], lambda r: r["name"], lambda r: r["values"])
    if comparison["series"]:
        out.append("")
        out.append("METRIC SERIES (points, last value)")
        for series in comparison["series"]:
            label = f"{series['task']} {series['metric']}".strip()
            values = [f"{len(p)} pts, {p[-1]['value']:.4g}" if p else None for p in series["runs"]]
            out.append(_line(False, label, values))
    if comparison["steps"]:
        out.append("")
        out.append("STEPS")
        for step in comparison["steps"]:
            values = [
                None if state is None else ("cached" if cached else state)
                for state, cached in zip(step["states"], step["cached"], strict=True)
            ]
            notes = []
            if step["code_changed"]:
                notes.append("code changed")
            if step["image_changed"]:
                notes.append("image changed")
            if step["parameters_changed"]:
                notes.append("parameters changed")
            if step["inputs_changed"]:
                notes.append("inputs changed")
            # Served from the cache or not is shown, but is not a difference.
            changed = bool(notes) or len(set(step["states"])) > 1
            out.append(_line(changed, step["display_name"], values, "  ".join(notes)))
    step_names = {s["name"]: s["display_name"] for s in comparison["steps"]}
    data = [r for r in comparison["inputs"] if r["external"]]
    section(
        "INPUT DATA",
        data,
        lambda r: f"{step_names.get(r['step'], r['step'])} {r['name']}",
        lambda r: [_short(d) for d in r["digests"]],
    )
    section(
        "OUTPUTS",
        comparison["outputs"],
        lambda r: f"{step_names.get(r['step'], r['step'])} {r['name']}",
        lambda r: [_short(d) for d in r["digests"]],
    )
    diffs = [
        (step, letters[i], diff)
        for step in comparison["steps"]
        for i, diff in enumerate(step["diffs"])
        if diff
    ]
    if diffs:
        out.append("")
        out.append("CODE CHANGES")
        for step, letter, diff in diffs:
            out.append(f"step {step['display_name']} (A -> {letter}):")
            out.append(diff.rstrip("\n"))
    return "\n".join(out)


def compare_command(args: argparse.Namespace) -> int:
    comparison = client_from(args).compare_runs(args.runs)
    if args.output == "json":
        print_json(comparison)
    else:
        print(render_compare(comparison, show_all=args.all))
    return 0


# -- lineage ----------------------------------------------------------------------------


def _run_summary(facts: dict[str, Any]) -> list[str]:
    lines = [f"run {facts['run']}  {facts.get('name') or ''}  experiment {facts.get('experiment')}"]
    source = facts.get("source")
    if source:
        git = source.get("git") or {}
        at = f" @ git {git['commit'][:10]}{' (dirty)' if git.get('dirty') else ''}" if git else ""
        lines.append(f"  source      {source.get('path')}{at}")
        lines.append(f"  snapshot    {source['snapshot']}  {_short(source['digest'])}")
    lines.append(f"  parameters  {json.dumps(facts.get('parameters') or {}, default=str)}")
    env = facts.get("environment")
    if env:
        lines.append(f"  environment python {env.get('python')}  {_short(env['digest'])}")
    lines.append(f"  user        {facts.get('user')}  backend {facts.get('backend')}")
    if facts.get("image"):
        lines.append(f"  image       {facts['image']}")
    if facts.get("reproduces"):
        lines.append(f"  reproduces  {facts['reproduces']}")
    return lines


def render_lineage(graph: dict[str, Any]) -> str:
    artifacts = {a["id"]: a for a in graph["artifacts"]}
    executions = {e["id"]: e for e in graph["executions"]}
    inputs: dict[int, list[tuple[str, int]]] = {}
    for edge in graph["edges"]:
        if edge["type"] == "INPUT":
            inputs.setdefault(edge["execution"], []).append((edge["name"], edge["artifact"]))
    out: list[str] = []
    seen: set[int] = set()

    def artifact(art_id: int, label: str, indent: str) -> None:
        art = artifacts[art_id]
        out.append(f"{indent}{label} {art['type']} {_short(art['digest'])}  {art['uri']}")
        producer = art.get("producer")
        if producer is None:
            out.append(f"{indent}  (from outside the pipeline)")
            return
        execution = executions[producer]
        props = execution["properties"]
        step = props.get("step") or execution["name"]
        cells = f" cells {props['cells']}" if props.get("cells") else ""
        out.append(f"{indent}  <- step {step}{cells} of run {execution['run']}")
        if producer in seen:
            return
        seen.add(producer)
        params = props.get("inputs") or {}
        if params:
            out.append(f"{indent}     parameters {json.dumps(params, default=str)}")
        out.append(f"{indent}     code {_short(props.get('code_digest'))}")
        for name, input_id in inputs.get(producer, []):
            artifact(input_id, f"{name}:", indent + "     ")

    first = graph["artifact"]
    artifact(first["id"], f"{first['name'] or 'artifact'}:", "")
    for consumer in graph["consumers"]:
        out.append(
            f"  -> read by step {consumer.get('step') or consumer['execution']} of run "
            f"{consumer['run']} as {consumer['name']}"
        )
    for facts in graph["runs"].values():
        out.append("")
        out += _run_summary(facts)
    return "\n".join(out)


def render_run_lineage(record: dict[str, Any]) -> str:
    out = _run_summary(record)
    for step in record["steps"]:
        props = step["execution"]["properties"]
        state = step["execution"]["state"]
        out.append(f"  step {props.get('step') or step['name']}  {state}")
        for art in step["inputs"]:
            out.append(f"    in  {art['event']:<20} {_short(art['digest'])}  {art['uri']}")
        for art in step["outputs"]:
            out.append(f"    out {art['event']:<20} {_short(art['digest'])}  {art['uri']}")
    return "\n".join(out)


def lineage_command(args: argparse.Namespace) -> int:
    from kubelab.pipelines.errors import NotFoundError

    client = client_from(args)
    run_id = None
    if "/" not in args.ref:
        try:
            run_id = client.store.resolve_run_id(args.ref)
        except NotFoundError:
            run_id = None
    if run_id is not None:
        record = client.run_lineage(run_id)
        print_json(record) if args.output == "json" else print(render_run_lineage(record))
        return 0
    graph = client.artifact_lineage(args.ref)
    print_json(graph) if args.output == "json" else print(render_lineage(graph))
    return 0


# -- reproduce --------------------------------------------------------------------------


def render_reproduction(report: dict[str, Any]) -> str:
    out = [f"reproduced run {report['run']} as {report['reproduction']} ({report['state']})"]
    for warning in report["warnings"]:
        out.append(f"warning: {warning}")
    differences = report["environment"]["differences"]
    if differences:
        for key in ("added", "removed", "changed"):
            if differences[key]:
                out.append(f"  environment {key}: {', '.join(differences[key][:12])}")
    for art in report["artifacts"]:
        mark = "same" if art["equal"] else "DIFFERENT"
        out.append(
            f"  {mark:<9} {art['step']} {art['name']}  {_short(art['original'])} -> "
            f"{_short(art['reproduced'])}"
        )
    for param in report["output_parameters"]:
        mark = "same" if param["equal"] else "DIFFERENT"
        out.append(
            f"  {mark:<9} {param['step']} {param['name']}  {_cell(param['original'])} -> "
            f"{_cell(param['reproduced'])}"
        )
    out.append("all outputs are identical" if report["equal"] else "the outputs differ")
    return "\n".join(out)


def reproduce_command(args: argparse.Namespace) -> int:
    from kubelab.pipelines.local.progress import TerminalProgress

    client = client_from(args)
    report = client.reproduce_run(
        args.run, timeout=args.timeout, on_event=TerminalProgress(sys.stderr)
    )
    print_json(report) if args.output == "json" else print(render_reproduction(report))
    return 0 if report["equal"] else 1


# -- export -----------------------------------------------------------------------------


def export_command(args: argparse.Namespace) -> int:
    exported = client_from(args).export_to_mlflow(
        args.mlflow, args.runs or None, artifacts=not args.no_artifacts
    )
    if args.output == "json":
        print_json(exported)
        return 0
    for item in exported:
        print(
            f"{item['run']}  {item['status']:<8} mlflow run {item['mlflow_run_id']} "
            f"(experiment {item['experiment_id']})"
        )
    if not exported:
        print("no runs to export", file=sys.stderr)
    return 0
