"""`kubelab validate NOTEBOOK.ipynb`: check a tagged notebook before running it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kubelab.pipelines.errors import KubelabError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a tagged notebook: steps, data dependencies, and that every variable "
        "passed between steps survives saving and loading",
        description=(
            "Compile the notebook's cell tags into a pipeline graph, then run each step once "
            "in a separate process and round-trip every cross-step variable through its "
            "marshaller. Exits non-zero on any error."
        ),
    )
    parser.add_argument("notebook", help="path to the .ipynb file")
    parser.add_argument(
        "--output", "-o", choices=("text", "json"), default="text", help="report format"
    )
    parser.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a pipeline parameter for the validation run (repeatable)",
    )
    parser.add_argument(
        "--no-execute",
        action="store_true",
        help="static checks only: do not run the notebook's code",
    )
    parser.set_defaults(handler=validate_command)


def _parameters(notebook: str, pairs: list[str]) -> dict[str, Any]:
    if not pairs:
        return {}
    from kubelab.client.cli.pipelines import split_pairs
    from kubelab.pipelines.notebook import compile_notebook
    from kubelab.pipelines.notebook.parameters import parse_value

    try:
        nb = compile_notebook(notebook)
    except KubelabError:
        return {}  # the validation report shows the notebook's own error
    return {
        name: parse_value(text, nb.parameter(name))
        for name, text in split_pairs(pairs, nb.parameters)
    }


def validate_command(args: argparse.Namespace) -> int:
    from kubelab.pipelines.notebook import validate_notebook

    parameters = _parameters(args.notebook, args.param)
    report = validate_notebook(args.notebook, parameters=parameters, execute=not args.no_execute)
    if args.output == "json":
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        print(report.format_text())
    return 0 if report.ok else 1
