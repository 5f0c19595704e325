"""Entry point of the `kubelab` console script.

Each concept contributes its sub-commands from its own module through a
`register(subparsers)` function, so that this file never grows with features.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kubelab.pipelines.errors import KubelabError

# Modules that add sub-commands; a missing one is skipped so partial installs still work.
# A job kind adds its own command (e.g. `kubelab train`) as one more module here.
COMMAND_MODULES: tuple[str, ...] = (
    "kubelab.client.cli.pipelines",
    "kubelab.client.cli.notebook",
    "kubelab.client.cli.runs",
    "kubelab.client.cli.jobs",
    "kubelab.client.cli.experiments",
    "kubelab.workloads.trainer.cli",
    "kubelab.workloads.serving.cli",
    "kubelab.workloads.optimizer.cli",
)


class _VersionAction(argparse.Action):
    """`--version`, with the version looked up only when asked (a scan of the installed
    distributions that `kubelab run` would otherwise pay before its engine starts)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show kubelab's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from kubelab.pipelines import __version__

        print(f"kubelab {__version__}")  # on stdout, as argparse's own version action
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubelab",
        description=(
            "Kubeflow-style ML from JupyterLab: compile and run notebook or KFP pipelines, "
            "and follow runs and jobs, locally or on Kubernetes."
        ),
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(handler(args) or 0)
    except KubelabError as error:
        print(f"kubelab: error: {error.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kubelab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
