"""One training process: runs the job's program with the torch.distributed environment set.

Called in a child forked from the warm fork server (`run(payload)`, torch already
imported), or as `python -m kubelab.workloads.trainer.worker PAYLOAD.json` in a
cached venv when the job has `packages_to_install`. Output goes to the rank's log
file (fds 1 and 2); an uncaught exception prints its traceback there and exits 1.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from typing import Any


def run(payload: dict[str, Any]) -> int:
    os.environ.update(payload["env"])
    os.chdir(payload["cwd"])
    script = payload["script"]
    sys.argv = [script, *payload.get("args", [])]
    sys.path.insert(0, payload.get("import_dir") or os.path.dirname(script))
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as error:
        if error.code not in (None, 0):
            if not isinstance(error.code, int):
                print(error.code, file=sys.stderr)
            code = error.code if isinstance(error.code, int) else 1
    except BaseException as error:
        print_user_traceback(error, script)
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def print_user_traceback(error: BaseException, script: str) -> None:
    """The traceback from the program's own frames on (not runpy's or kubelab's)."""
    trace = traceback.TracebackException.from_exception(error)
    frames = trace.stack
    first = next((i for i, f in enumerate(frames) if f.filename == script), 0)
    trace.stack = traceback.StackSummary.from_list(frames[first:])
    print("".join(trace.format()), end="", file=sys.stderr)


def main(argv: list[str]) -> None:
    with open(argv[0]) as file:
        payload = json.load(file)
    sys.exit(run(payload))


if __name__ == "__main__":
    main(sys.argv[1:])
