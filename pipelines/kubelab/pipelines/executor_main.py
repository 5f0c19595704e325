"""Entry point of a Python component's container (KFP's `kfp.dsl.executor_main`).

    python -m kubelab.pipelines.executor_main --component_module_path P \
        --executor_input JSON --function_to_execute NAME

The local engine calls `execute(...)` directly in a pre-forked worker instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.executor.executor import Executor, execute, load_function

__all__ = ["execute", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubelab.pipelines.executor_main")
    parser.add_argument("--component_module_path", required=True)
    parser.add_argument("--executor_input", required=True, help="KFP ExecutorInput JSON")
    parser.add_argument("--function_to_execute", required=True)
    args, _unknown = parser.parse_known_args(argv)
    try:
        with open(args.component_module_path, encoding="utf-8") as handle:
            source = handle.read()
        executor_input = json.loads(args.executor_input)
        func = load_function(source, args.function_to_execute, args.component_module_path)
        Executor(executor_input, func).run()
    except KubelabError as error:
        print(f"kubelab executor: error: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
