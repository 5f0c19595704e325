"""`kubelab experiments list | show | create | rename | archive | unarchive`.

An experiment groups runs (one per notebook or pipeline file unless a run names one
with `kubelab run --experiment NAME`), as KFP's experiments do on a cluster.
Experiments are named by id or name.
"""

from __future__ import annotations

import argparse
from typing import Any

from kubelab.client.cli.common import add_output_option, client_from, print_json, when


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("experiments", help="list, rename and archive experiments")
    sub = parser.add_subparsers(dest="experiments_command", metavar="ACTION")
    list_p = sub.add_parser("list", help="experiments, most recently used first")
    list_p.add_argument("--archived", action="store_true", help="include archived experiments")
    add_output_option(list_p)
    list_p.set_defaults(handler=list_command)
    show_p = sub.add_parser("show", help="an experiment and its recent runs")
    show_p.add_argument("experiment", help="id or name")
    show_p.add_argument("--limit", type=int, default=20)
    add_output_option(show_p)
    show_p.set_defaults(handler=show_command)
    create_p = sub.add_parser("create", help="an empty experiment to run into")
    create_p.add_argument("name")
    create_p.add_argument("--description", default="")
    add_output_option(create_p)
    create_p.set_defaults(handler=create_command)
    rename_p = sub.add_parser("rename", help="give an experiment a new name")
    rename_p.add_argument("experiment", help="id or name")
    rename_p.add_argument("new_name")
    add_output_option(rename_p)
    rename_p.set_defaults(handler=rename_command)
    for action, help_text in (
        ("archive", "hide an experiment and its runs from the lists"),
        ("unarchive", "bring an archived experiment back"),
    ):
        action_p = sub.add_parser(action, help=help_text)
        action_p.add_argument("experiment", help="id or name")
        add_output_option(action_p)
        action_p.set_defaults(handler=archive_command, archive=action == "archive")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])


def print_experiments(experiments: list[dict[str, Any]]) -> None:
    if not experiments:
        print("no experiments yet (a run starts one)")
        return
    print(f"{'ID':<5} {'RUNS':>5}  {'LAST RUN':<20} {'STATES':<28} NAME")
    for e in experiments:
        states = " ".join(f"{k}:{v}" for k, v in sorted(e["states"].items()))
        name = e["name"] + ("  (archived)" if e["archived"] else "")
        print(f"{e['id']:<5} {e['runs']:>5}  {when(e['last_run_at']):<20} {states:<28} {name}")


def _print(args: argparse.Namespace, experiment: dict[str, Any]) -> None:
    if args.output == "json":
        print_json(experiment)
    else:
        print_experiments([experiment])


def list_command(args: argparse.Namespace) -> int:
    experiments = client_from(args).list_experiments(include_archived=args.archived)
    if args.output == "json":
        print_json(experiments)
    else:
        print_experiments(experiments)
    return 0


def show_command(args: argparse.Namespace) -> int:
    from kubelab.client.cli.common import print_table

    client = client_from(args)
    experiment = client.get_experiment(experiment_name=args.experiment)
    runs = client.store.list_runs(
        args.limit,
        kinds=("pipeline", "training", "tuning", "serving"),
        experiment=experiment["id"],
    )
    if args.output == "json":
        print_json({**experiment, "recent_runs": runs})
        return 0
    print_experiments([experiment])
    if experiment["description"]:
        print(f"  {experiment['description']}")
    print()
    print_table(runs, "no runs in this experiment", kind=True)
    return 0


def create_command(args: argparse.Namespace) -> int:
    _print(args, client_from(args).create_experiment(args.name, args.description))
    return 0


def rename_command(args: argparse.Namespace) -> int:
    _print(args, client_from(args).rename_experiment(args.experiment, args.new_name))
    return 0


def archive_command(args: argparse.Namespace) -> int:
    client = client_from(args)
    if args.archive:
        _print(args, client.archive_experiment(args.experiment))
    else:
        _print(args, client.unarchive_experiment(args.experiment))
    return 0
