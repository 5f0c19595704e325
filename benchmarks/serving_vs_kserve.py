"""kubelab's model server next to KServe's own Python ModelServer, on this machine.

    .venv/bin/python benchmarks/serving_vs_kserve.py [--seconds 5] [--rounds 6] [--cold-starts 3]

Both serve the same file, a scikit-learn LogisticRegression on iris (`model.joblib`,
tiny, so the server and not the model dominates), and get the same load from the same
client (`serving_load.py`): Open Inference Protocol v2 infer requests in JSON (FP32
[2, 4]), 8 keep-alive connections in a closed loop, a fixed duration after a warm-up.

| side | how it starts |
|---|---|
| kubelab | `kubelab serve model.joblib --name iris --port P` (returns once the model answers) |
| KServe | `kserve_sklearn_server.py` in `.venv-kserve` (PyPI `kserve`, created when missing): KServe's sklearnserver model class behind `kserve.ModelServer`, defaults (one worker, per-request access and timing logs) |
| KServe, quiet | the same with `KSERVE_LOGLEVEL=WARNING` (no per-request log lines), its best case |

Cold start is the wall time from launching the command to the first 200 from
`/v2/models/iris/ready`. Server CPU per request is read from `/proc/<pid>/stat`
(user + system time during the window / requests). The servers run side by side and
the load windows alternate between them, so that the background load of a shared
machine falls on each alike; medians are reported and written to
`benchmarks/results/serving_vs_kserve.json`, with a check that both answer the same
v2 infer and v1 predict with the same JSON (request ids aside).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
KSERVE_VENV = REPO / ".venv-kserve"
KSERVE_VERSION = "0.21.0"
BODY = {
    "inputs": [
        {
            "name": "input-0",
            "shape": [2, 4],
            "datatype": "FP32",
            "data": [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]],
        }
    ]
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_kserve_venv() -> Path:
    python = KSERVE_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {KSERVE_VENV} with kserve=={KSERVE_VERSION} (a few minutes)...")
        subprocess.run([sys.executable, "-m", "venv", str(KSERVE_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                f"kserve=={KSERVE_VERSION}",
                "scikit-learn",
                "joblib",
            ],
            check=True,
        )
    return python


def make_model(directory: Path) -> Path:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    directory.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    path = directory / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    return path


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/v2/models/iris/ready", timeout=1
        ) as answer:
            return answer.status == 200
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Side:
    name: str
    answers: dict[str, Any]

    def start(self, model: Path, port: int) -> float:
        """Launch, wait for the model to answer; returns the cold start in seconds."""
        raise NotImplementedError

    pid: int

    def stop(self) -> None:
        raise NotImplementedError


class Kubelab(Side):
    name = "kubelab"

    def __init__(self, home: Path) -> None:
        self.home = home

    def start(self, model: Path, port: int) -> float:
        env = {**os.environ, "KUBELAB_HOME": str(self.home)}
        started = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "kubelab.client.cli",
                "serve",
                str(model),
                "--name",
                "iris",
                "--port",
                str(port),
                "-o",
                "json",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        cold = time.perf_counter() - started
        if out.returncode != 0:
            raise RuntimeError(f"kubelab serve failed:\n{out.stdout}\n{out.stderr}")
        self.env = env
        self.pid = int(json.loads(out.stdout)["pid"])
        assert ready(port)
        return cold

    def stop(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "kubelab.client.cli", "jobs", "delete", "iris"],
            env=self.env,
            check=True,
            capture_output=True,
        )


class KServe(Side):
    def __init__(self, python: Path, quiet: bool) -> None:
        self.python = python
        self.quiet = quiet
        self.name = "kserve (quiet)" if quiet else "kserve"

    def start(self, model: Path, port: int) -> float:
        env = {**os.environ}
        env.pop("PYTHONPATH", None)
        if self.quiet:
            env["KSERVE_LOGLEVEL"] = "WARNING"
        self.log = (RESULTS / "kserve-server.log").open("w")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                str(self.python),
                str(HERE / "kserve_sklearn_server.py"),
                "--model_dir",
                str(model.parent),
                "--model_name",
                "iris",
                "--http_port",
                str(port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        while not ready(port):
            if self.process.poll() is not None:
                raise RuntimeError(f"KServe exited; see {self.log.name}")
            time.sleep(0.01)
        self.pid = self.process.pid
        return time.perf_counter() - started

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def load(port: int, body_file: Path, seconds: float, concurrency: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "serving_load.py"),
            "--port",
            str(port),
            "--path",
            "/v2/models/iris/infer",
            "--body-file",
            str(body_file),
            "--seconds",
            str(seconds),
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def answers(port: int) -> dict[str, Any]:
    """The same v2 infer and v1 predict to a side, for the side-by-side check."""

    def post(path: str, payload: Any) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    v2 = post("/v2/models/iris/infer", BODY)
    v2.pop("id")  # a fresh uuid on both sides
    v1 = post("/v1/models/iris:predict", {"instances": BODY["inputs"][0]["data"]})
    return {"v2": v2, "v1": v1}


def window(side: Side, port: int, body: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One timed window of load on a running side, with the server's CPU time."""
    before = cpu_seconds(side.pid)
    result = load(port, body, args.seconds, args.concurrency)
    spent = cpu_seconds(side.pid) - before
    result["server_cpu_ms_per_request"] = round(1000 * spent / max(1, result["requests"]), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one load window")
    parser.add_argument("--rounds", type=int, default=6, help="load windows per side")
    parser.add_argument("--cold-starts", type=int, default=3, help="cold starts per side")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    work = RESULTS / "serving"
    model = make_model(work / "model")
    body = work / "infer.json"
    body.write_text(json.dumps(BODY))
    python = ensure_kserve_venv()
    sides: list[Side] = [
        Kubelab(work / "kubelab-home"),
        KServe(python, False),
        KServe(python, True),
    ]
    cold: dict[str, list[float]] = {s.name: [] for s in sides}
    for attempt in range(args.cold_starts):
        for side in sides if attempt % 2 == 0 else reversed(sides):
            cold[side.name].append(round(side.start(model, free_port()), 3))
            side.stop()
            print(f"cold start {side.name:15} {cold[side.name][-1]:.2f} s", flush=True)
    # All sides up at once, load windows interleaved, so that the machine's background
    # load falls on every side alike.
    ports = {side.name: free_port() for side in sides}
    for side in sides:
        side.start(model, ports[side.name])
        side.answers = answers(ports[side.name])
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in sides}
    try:
        for round_ in range(args.rounds):
            for side in sides if round_ % 2 == 0 else reversed(sides):
                result = window(side, ports[side.name], body, args)
                runs[side.name].append(result)
                print(f"round {round_ + 1} {side.name:15} {json.dumps(result)}", flush=True)
    finally:
        for side in sides:
            side.stop()
    keys = ("throughput", "p50_ms", "p99_ms", "server_cpu_ms_per_request")
    summary = {
        name: {k: statistics.median(r[k] for r in results) for k in keys}
        | {
            # the least disturbed window: what the server does when the machine lets it
            "best_throughput": max(r["throughput"] for r in results),
            "best_p99_ms": min(r["p99_ms"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "cold_start_s": statistics.median(cold[name]),
        }
        for name, results in runs.items()
    }
    same = sides[0].answers == sides[1].answers
    print(f"same v1 and v2 answers from kubelab and KServe (ids aside): {same}")
    if not same:
        print(json.dumps({s.name: s.answers for s in sides[:2]}, indent=2))
    ours = summary["kubelab"]
    for name in ("kserve", "kserve (quiet)"):
        theirs = summary[name]
        summary[f"kubelab vs {name}"] = {
            "throughput_ratio": round(ours["throughput"] / theirs["throughput"], 2),
            "best_throughput_ratio": round(ours["best_throughput"] / theirs["best_throughput"], 2),
            "p99_ratio": round(theirs["p99_ms"] / ours["p99_ms"], 2),
            "cold_start_ratio": round(theirs["cold_start_s"] / ours["cold_start_s"], 2),
            "cpu_per_request_ratio": round(
                theirs["server_cpu_ms_per_request"] / ours["server_cpu_ms_per_request"], 2
            ),
        }
    load_avg = os.getloadavg()
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in load_avg],
        "settings": vars(args),
        "same_answers_as_kserve": same,
        "summary": summary,
        "cold_starts": cold,
        "runs": runs,
    }
    (RESULTS / "serving_vs_kserve.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
