"""kubelab's local engine against kfp.local, on the same pipeline sources.

    .venv/bin/python benchmarks/pipelines_vs_kfp_local.py [--quick]

Creates `.venv-kfp` with the real `kfp` SDK when missing, writes one pipeline module
twice (`from kfp import dsl` / `from kubelab.pipelines import dsl`), runs each side in
its own interpreter and prints a table:

- per-task overhead: wall time of a 20-step chain of trivial components / 20
  (median of --repeat runs);
- fan-out: 16 independent 1-second components;
- cached re-run of the 20-step chain (both with caching on, second run timed).

Both sides run with their default settings (no parallelism or worker options), as a
user would. JSON goes to benchmarks/results/ (gitignored). Not run by pytest.
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
KFP_VENV = REPO / ".venv-kfp"
RESULTS = REPO / "benchmarks" / "results"

PIPELINES = textwrap.dedent(
    """
    from {package} import dsl

    CHAIN = {chain}
    FAN = {fan}

    @dsl.component
    def step(x: int) -> int:
        return x + 1

    @dsl.component
    def sleeper(i: int) -> int:
        import time
        time.sleep(1.0)
        return i

    @dsl.pipeline(name="chain")
    def chain(x: int = 0) -> int:
        t = step(x=x)
        for _ in range(CHAIN - 1):
            t = step(x=t.output)
        return t.output

    @dsl.pipeline(name="fan-out")
    def fan_out():
        for i in range(FAN):
            sleeper(i=i)

    @dsl.pipeline(name="warm-up")
    def warm_up() -> int:
        return step(x=0).output
    """
)

DRIVER = textwrap.dedent(
    """
    import json, os, sys, time, warnings, logging
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    side = sys.argv[1]
    root = sys.argv[2]
    import pipelines as p
    if side == "kfp":
        from kfp import local
        def init(caching):
            local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root,
                       enable_caching=caching, cache_root=os.path.join(root, "cache"))
    else:
        from kubelab.pipelines import local
        def init(caching):
            local.init(runner=local.SubprocessRunner(), pipeline_root=root,
                       enable_caching=caching)
    out = {}
    devnull = open(os.devnull, "w")
    def timed(fn, **kw):
        # Task logs go to the terminal on both sides; keep the table readable.
        saved = os.dup(1); os.dup2(devnull.fileno(), 1)
        try:
            t0 = time.perf_counter(); task = fn(**kw); dt = time.perf_counter() - t0
        finally:
            sys.stdout.flush(); os.dup2(saved, 1); os.close(saved)
        return dt, task
    init(False)
    out["warm_up_s"], _ = timed(p.warm_up)
    runs = []
    for i in range(int(sys.argv[3])):
        dt, task = timed(p.chain, x=i)
        assert task.output == i + p.CHAIN, task.output
        runs.append(dt)
    out["chain_runs_s"] = runs
    out["chain_s"] = sorted(runs)[len(runs) // 2]  # median: other load on the machine is noise
    out["per_task_overhead_ms"] = out["chain_s"] / p.CHAIN * 1000
    out["fan_out_s"], _ = timed(p.fan_out)
    init(True)
    out["cache_fill_s"], _ = timed(p.chain, x=1000)
    dt, task = timed(p.chain, x=1000)
    assert task.output == 1000 + p.CHAIN, task.output
    out["cached_rerun_s"] = dt
    print("RESULT " + json.dumps(out))
    """
)


def ensure_kfp_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with the kfp SDK ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    check = subprocess.run([str(python), "-c", "import kfp"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "kfp"], check=True)
    return python


def run_side(side: str, python: str, workdir: Path, chain: int, fan: int, repeat: int) -> dict:
    package = "kfp" if side == "kfp" else "kubelab.pipelines"
    side_dir = workdir / side
    side_dir.mkdir()
    (side_dir / "pipelines.py").write_text(PIPELINES.format(package=package, chain=chain, fan=fan))
    (side_dir / "driver.py").write_text(DRIVER)
    env = {**os.environ, "KUBELAB_HOME": str(workdir / "kubelab-home"), "PYTHONWARNINGS": "ignore"}
    print(f"running {side} ...", file=sys.stderr)
    started = time.perf_counter()
    proc = subprocess.run(
        [python, "driver.py", side, str(side_dir / "outputs"), str(repeat)],
        cwd=side_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{side} benchmark failed (exit {proc.returncode})")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["total_wall_s"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chain", type=int, default=20)
    parser.add_argument("--fan", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="chain runs (median is reported)")
    parser.add_argument("--kfp-venv", type=Path, default=KFP_VENV, help="venv with the kfp SDK")
    args = parser.parse_args()
    kfp_python = ensure_kfp_venv(args.kfp_venv)
    kfp_version = subprocess.run(
        [str(kfp_python), "-c", "import kfp; print(kfp.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="kubelab-bench-") as tmp:
        workdir = Path(tmp)
        kubelab = run_side("kubelab", sys.executable, workdir, args.chain, args.fan, args.repeat)
        kfp = run_side("kfp", str(kfp_python), workdir, args.chain, args.fan, args.repeat)
    rows = [
        ("per-task overhead (ms)", "per_task_overhead_ms", ">= 30x lower"),
        (f"{args.chain}-step chain (s)", "chain_s", ""),
        (f"{args.fan}-way fan-out of 1 s tasks (s)", "fan_out_s", ">= 12x faster"),
        ("cached re-run of the chain (s)", "cached_rerun_s", "kubelab < 0.5 s"),
    ]
    print(f"\n{'metric':<36} {'kubelab':>10} {'kfp.local':>10} {'ratio':>8}  target")
    for label, key, target in rows:
        ratio = kfp[key] / kubelab[key] if kubelab[key] else float("inf")
        print(f"{label:<36} {kubelab[key]:>10.3f} {kfp[key]:>10.3f} {ratio:>7.1f}x  {target}")
    checks = {
        "overhead_30x": kfp["per_task_overhead_ms"] / kubelab["per_task_overhead_ms"] >= 30,
        "fan_out_12x": kfp["fan_out_s"] / kubelab["fan_out_s"] >= 12,
        "cached_under_0_5s": kubelab["cached_rerun_s"] < 0.5,
    }
    print("targets: " + ", ".join(f"{k}={'met' if v else 'MISSED'}" for k, v in checks.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"pipelines_vs_kfp_local-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "kfp_version": kfp_version,
                "chain": args.chain,
                "fan": args.fan,
                "repeat": args.repeat,
                "kubelab": kubelab,
                "kfp_local": kfp,
                "targets": checks,
            },
            indent=2,
        )
    )
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
