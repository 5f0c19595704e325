"""kubelab's Kubeflow Pipelines client against kfp.Client, on the same KFP API.

    .venv/bin/python benchmarks/kfp_client.py [--repeat 7] [--runs 50]

Both talk to the KFP 2.17 contract stub of tests/kfp_contract (loopback HTTP, single-user
mode), each from its own interpreter: kubelab from this venv, kfp.Client (kfp 2.17 and
its generated kfp_server_api) from `.venv-kfp`. The stub holds `--runs` finished runs of
a 5-step notebook pipeline, one step cached in each. Timed, median of `--repeat`:

| op | kubelab | kfp.Client |
|---|---|---|
| import | `from kubelab.client import Client` | `import kfp` |
| submit | `create_run_from_pipeline_package(pipeline.yaml)` | the same call |
| first get | the first `get_run(id)` of a finished run, timed once: kubelab also reads the run's Argo workflow (v1beta1) to find its cached step | the same call |
| get | `get_run(id)` again: the run as its notebook steps (the finished run's workflow is kept) | `get_run(id)`: the raw v2beta1 model |
| list | `list_runs(50, backend="kubernetes")` | `list_runs(page_size=50)` |

kubelab does more per call (steps mapped back from Argo's nodes, a cached step found
through the v1beta1 workflow once per finished run, runs recorded in its store), so
this shows what that costs. JSON goes to benchmarks/results/ (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KFP_PYTHON = REPO / ".venv-kfp" / "bin" / "python"
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "tests"))

TIMER = textwrap.dedent(
    """
    import json, statistics, sys, time
    url, package, repeat, run_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

    def once_ms(call):
        start = time.perf_counter()
        call()
        return round((time.perf_counter() - start) * 1000, 2)

    def median_ms(call):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        return round(statistics.median(times), 2)
    """
)

KUBELAB_SIDE = TIMER + textwrap.dedent(
    """
    import tempfile
    start = time.perf_counter()
    from kubelab.client import Client
    imported = (time.perf_counter() - start) * 1000
    home = tempfile.mkdtemp()
    client = Client("kubernetes", home=home, kfp_endpoint=url, kfp_experiment="bench")
    first_get = once_ms(lambda: client.get_run(run_id))  # reads the workflow too, once
    result = {
        "import": round(imported, 1),
        "submit": median_ms(lambda: client.create_run_from_pipeline_package(package)),
        "first get": first_get,
        "get": median_ms(lambda: client.get_run(run_id)),
        "list 50": median_ms(lambda: client.list_runs(50, backend="kubernetes")),
    }
    assert client.get_run(run_id)["steps"][0]["state"] == "succeeded"
    print(json.dumps(result))
    """
)

KFP_SIDE = TIMER + textwrap.dedent(
    """
    import logging
    logging.disable(logging.WARNING)
    start = time.perf_counter()
    import kfp
    imported = (time.perf_counter() - start) * 1000
    client = kfp.Client(host=url)
    first_get = once_ms(lambda: client.get_run(run_id))
    result = {
        "import": round(imported, 1),
        "submit": median_ms(
            lambda: client.create_run_from_pipeline_package(package, experiment_name="bench")
        ),
        "first get": first_get,
        "get": median_ms(lambda: client.get_run(run_id)),
        "list 50": median_ms(lambda: client.list_runs(page_size=50)),
    }
    print(json.dumps(result))
    """
)


def side(python: Path | str, script: str, *args: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [str(python), "-c", script, *args], capture_output=True, text=True, env=env, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(f"{python} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    if not KFP_PYTHON.exists():
        raise SystemExit("needs .venv-kfp with kfp 2.17 (make test-deps creates it)")

    from kfp_contract.kfp_env import training_notebook
    from kfp_contract.kfp_stub import KfpStub

    from kubelab.pipelines.compiler.compiler import render
    from kubelab.pipelines.notebook import compile_notebook

    work = Path(tempfile.mkdtemp())
    notebook = compile_notebook(training_notebook(), name="bench")
    ir = notebook.pipeline_spec()
    package = work / "bench.yaml"
    package.write_text(render(ir, None, str(package)))
    tasks = list(ir["root"]["dag"]["tasks"])

    stub = KfpStub(multi_user=False).start()
    try:
        for index in range(args.runs):
            run = stub.create_run_elsewhere(ir)
            run.created_at -= index
            stub.simulate_argo(run.run_id, {t: "Succeeded" for t in tasks} | {tasks[0]: "Cached"})
        run_id = next(iter(stub.runs))
        common = (stub.url, str(package), str(args.repeat), run_id)
        started = time.time()
        kubelab = side(sys.executable, KUBELAB_SIDE, *common)
        kfp = side(KFP_PYTHON, KFP_SIDE, *common)
    finally:
        stub.stop()
    rows = [
        {
            "op": op,
            "kubelab_ms": kubelab[op],
            "kfp_ms": kfp[op],
            "ratio": round(kfp[op] / kubelab[op], 2),
        }
        for op in kubelab
    ]
    for row in rows:
        print(
            f"{row['op']:<12} kubelab {row['kubelab_ms']:>8} ms   kfp.Client {row['kfp_ms']:>8} ms   kfp/kubelab {row['ratio']}"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"kfp_client-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {"date": started, "runs": args.runs, "repeat": args.repeat, "rows": rows}, indent=2
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
