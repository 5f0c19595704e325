"""A notebook as a pipeline against JupyterLab's "Run All", in the same run.

    .venv/bin/python benchmarks/notebook_vs_run_all.py [--notebook examples/demo.ipynb] [--repeat 3]

Three ways to compute the same notebook, each timed wall-clock (best of --repeat;
Run All and cold runs alternate, and each pair's ratio is printed too):

- Run All: nbclient executes every cell in a fresh kernel (kernel start included),
  as "Restart Kernel and Run All" does;
- cold: `kubelab run NOTEBOOK --no-cache` in a new process (it starts the engine and
  its warm worker itself), as from a terminal;
- warm: `POST /kubelab/api/runs` to a running jupyter server with the kubelab
  extension whose engine has already run the notebook once; each timed run changes
  the `random_state` parameter (when there is one) so no step comes from the cache.

It also prints each step's time and marshalling figures of the last warm run, and the
per-step overhead (step time minus the time in its own cells: fork, load inputs, save
outputs, record) of a chain of --chain trivial steps passing a small value, through
the same warm server. Targets (issue 20): cold <= 0.8x Run All, warm <= 0.5x Run All,
overhead <= 50 ms per step. JSON goes to
benchmarks/results/. Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def run_all(notebook: Path) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    started = time.perf_counter()
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    ).execute()
    return time.perf_counter() - started


def cold(notebook: Path, home: Path) -> float:
    env = {**os.environ, "KUBELAB_HOME": str(home)}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kubelab.client.cli", "run", notebook.name, "--no-cache",
         "--pipeline-root", str(home / "outputs")],
        cwd=notebook.parent, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return time.perf_counter() - started


class Server:
    """A jupyter server with the kubelab extension, in its own process."""

    def __init__(self, root: Path, home: Path) -> None:
        self.token = secrets.token_hex(16)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "KUBELAB_HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "rt")}
        home.mkdir(parents=True, exist_ok=True)
        config = home / "jupyter_server_config.py"
        config.write_text('c.ServerApp.jpserver_extensions = {"kubelab.server": True}\n')
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             f"--config={config}", "--allow-root"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                self.call("GET", "kubelab/api/status")
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("the jupyter server did not start") from None
                time.sleep(0.3)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def run(self, path: str, parameters: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        run_id = self.call("POST", "kubelab/api/runs", {"path": path, "parameters": parameters})[
            "id"
        ]
        while True:
            run = self.call("GET", f"kubelab/api/runs/{run_id}")
            if run["state"] not in ("pending", "running"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        if run["state"] != "succeeded":
            raise SystemExit(f"run {run_id} {run['state']}: {run['error']}")
        return elapsed, run

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def chain_notebook(path: Path, steps: int) -> None:
    """A parameter and `steps` steps, each adding one to a small list it hands on."""
    import nbformat

    cells = [nbformat.v4.new_code_cell("seed = 0")]
    cells[0].metadata["tags"] = ["pipeline-parameters"]
    for i in range(steps):
        source = "values = [seed] * 100" if i == 0 else "values = [v + 1 for v in values]"
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = [f"step:s{i}"]
        cells.append(cell)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


def overheads_ms(run: dict[str, Any]) -> list[float]:
    return [
        (s["duration_s"] - (s.get("marshal") or {}).get("cells_seconds", 0.0)) * 1000
        for s in run["steps"]
        if s["duration_s"] is not None and not s["cached"]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notebook", type=Path, default=REPO / "examples" / "demo.ipynb")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chain", type=int, default=10, help="steps of the overhead chain")
    args = parser.parse_args()
    results: dict[str, Any] = {"notebook": str(args.notebook)}
    with tempfile.TemporaryDirectory(prefix="kubelab-nb-bench-") as tmp:
        work = Path(tmp)
        notebook = work / args.notebook.name
        shutil.copy(args.notebook, notebook)
        # Interleaved, so that a machine that speeds up or slows down during the benchmark
        # (shared cores, CPU frequency) weighs on both alike; each pair gives a ratio.
        results["run_all_s"], results["cold_s"] = [], []
        for i in range(args.repeat):
            results["run_all_s"].append(run_all(notebook))
            results["cold_s"].append(cold(notebook, work / f"cold-{i}"))
        pairs = zip(results["cold_s"], results["run_all_s"], strict=True)
        results["cold_ratios"] = [cold_s / run_all_s for cold_s, run_all_s in pairs]
        server = Server(work, work / "server-home")
        try:
            from kubelab.pipelines.notebook import compile_notebook

            params = compile_notebook(notebook).parameters
            vary = "random_state" if "random_state" in params else None
            server.run(notebook.name, {vary: 1000} if vary else {})  # warms the engine
            warm = []
            for i in range(args.repeat):
                elapsed, run = server.run(notebook.name, {vary: 1001 + i} if vary else {})
                warm.append(elapsed)
            results["warm_s"] = warm
            results["last_warm_steps"] = [
                {k: s.get(k) for k in ("name", "duration_s", "cached", "marshal")}
                for s in run["steps"]
            ]
            chain_notebook(work / "chain.ipynb", args.chain)
            server.run("chain.ipynb", {"seed": -1})
            overheads: list[float] = []
            for i in range(args.repeat):
                overheads += overheads_ms(server.run("chain.ipynb", {"seed": i})[1])
            results["overhead_ms"] = sorted(overheads)
        finally:
            server.close()
    best = {k: min(results[k]) for k in ("run_all_s", "cold_s", "warm_s")}
    print(f"\n{'way':<34} {'best s':>8} {'all runs':<30} {'vs Run All':>10}  target")
    targets = {"run_all_s": "", "cold_s": "<= 0.8x", "warm_s": "<= 0.5x"}
    labels = {
        "run_all_s": "Run All (nbclient, fresh kernel)",
        "cold_s": "kubelab run --no-cache (cold)",
        "warm_s": "server, engine warm",
    }
    for key, label in labels.items():
        runs = ", ".join(f"{v:.2f}" for v in results[key])
        ratio = best[key] / best["run_all_s"]
        print(f"{label:<34} {best[key]:>8.2f} {runs:<30} {ratio:>9.2f}x  {targets[key]}")
    ratios = sorted(results["cold_ratios"])
    print(
        f"cold / Run All, run by run: median {ratios[len(ratios) // 2]:.2f}x, "
        f"worst {ratios[-1]:.2f}x ({', '.join(f'{r:.2f}' for r in results['cold_ratios'])})"
    )
    print("\nlast warm run, per step:")
    for step in results["last_warm_steps"]:
        m = step["marshal"] or {}
        print(
            f"  {step['name']:<20} {step['duration_s'] or 0:>6.3f} s  "
            f"cells {m.get('cells_seconds', 0):6.3f} s   "
            f"load {m.get('load_bytes', 0) / 1e6:7.2f} MB {m.get('load_seconds', 0):.3f} s   "
            f"save {m.get('save_bytes', 0) / 1e6:7.2f} MB {m.get('save_seconds', 0):.3f} s   "
            f"linked {m.get('linked', 0)}"
        )
    o = results["overhead_ms"]
    print(
        f"\nper-step overhead ({args.chain}-step chain, warm): median {o[len(o) // 2]:.0f} ms, "
        f"min {o[0]:.0f} ms, max {o[-1]:.0f} ms  (target <= 50 ms)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results.update(when=stamp, cpus=os.cpu_count(), load=os.getloadavg()[0], best=best)
    path = RESULTS / f"notebook_vs_run_all-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path.relative_to(REPO)} (load average {results['load']:.1f})", file=sys.stderr)


if __name__ == "__main__":
    main()
