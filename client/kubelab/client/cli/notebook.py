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
    from kubelab.pipelines.notebook import compile_notebook
    from kubelab.pipelines.notebook.parameters import parse_value

    try:
        nb = compile_notebook(notebook)
    except KubelabError:
        return {}  # the validation report shows the notebook's own error
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise KubelabError(f"--param wants NAME=VALUE, got {pair!r}")
        if name not in nb.parameters:
            raise KubelabError(
                f"unknown parameter {name!r}; the notebook defines: "
                + (", ".join(nb.parameters) or "none")
            )
        values[name] = parse_value(text, nb.parameter(name))
    return values


def validate_command(args: argparse.Namespace) -> int:
    from kubelab.pipelines.notebook import validate_notebook

    parameters = _parameters(args.notebook, args.param)
    report = validate_notebook(args.notebook, parameters=parameters, execute=not args.no_execute)
    if args.output == "json":
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        print(report.format_text())
    return 0 if report.ok else 1
