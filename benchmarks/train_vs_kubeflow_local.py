"""kubelab's local training backend against the Kubeflow SDK's LocalProcessBackend.

    .venv/bin/python benchmarks/train_vs_kubeflow_local.py [--repeat 5]

The same trivial DDP function (2 processes, gloo, an all_reduce of rank + 1) goes
through both, each side in its own interpreter; the time measured is from `train()`
to the job being Complete (output checked: every rank printed the sum 3).

- kubelab: `TrainingWorkload.start_local` + the store, which is what
  `TrainerClient.train()` + `wait_for_job_status()` do underneath. The first job
  of a fresh process ("cold") also starts the fork server and imports torch there;
  later jobs ("warm") fork from it, as in a notebook after the first job.
- Kubeflow SDK (PyPI `kubeflow`, in `.venv-kubeflow`, created when missing):
  `TrainerClient(LocalProcessBackendConfig())`. Each job makes a venv, runs
  ensurepip, pip-installs the runtime's packages and starts `torchrun`. Its venv
  has no torch unless pip installs one; rather than download 2.7 GB per job, it
  is given the cheapest torch there is: a tiny local wheel named `torch` whose
  `.pth` points at the torch kubelab uses, plus a `torchrun` script. So its figure
  is a lower bound of what a real user waits (who also downloads torch).

JSON goes to benchmarks/results/ (gitignored). Not run by pytest.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import textwrap
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KF_VENV = REPO / ".venv-kubeflow"
RESULTS = REPO / "benchmarks" / "results"

DDP = textwrap.dedent(
    """
    def ddp_sum():
        import torch
        import torch.distributed as dist

        dist.init_process_group("gloo")
        total = torch.tensor([dist.get_rank() + 1.0])
        dist.all_reduce(total)
        print(f"rank {dist.get_rank()} sum {total.item():g}", flush=True)
        dist.destroy_process_group()
    """
)

KUBELAB_SIDE = textwrap.dedent(
    """
    import json, sys, tempfile, time
    from pathlib import Path
    from kubelab.client.store import RunStore
    from kubelab.workloads.base import LocalContext
    from kubelab.workloads.trainer.spec import function_source
    from kubelab.workloads.trainer.workload import TrainingWorkload
    from ddp_module import ddp_sum

    home = Path(tempfile.mkdtemp())
    ctx = LocalContext(store=RunStore(home / "k.db"), home=home, root=home)
    workload = TrainingWorkload()
    times = []
    for i in range(int(sys.argv[1])):
        t0 = time.perf_counter()
        spec = workload.validate({"function": function_source(ddp_sum), "nproc_per_node": 2})
        ctx.store.create_run(f"j{i}", {}, run_id=f"j{i}", kind="training", spec=spec)
        workload.start_local(f"j{i}", spec, ctx)
        while ctx.store.get_run(f"j{i}")["state"] not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.01)
        times.append(time.perf_counter() - t0)
        job = ctx.store.get_run(f"j{i}")
        log = Path(ctx.store.task_info(f"j{i}", "node-0")["log_path"]).read_text()
        assert job["state"] == "succeeded" and log.count("sum 3") == 2, (job, log)
    print(json.dumps(times))
    """
)

KUBEFLOW_SIDE = textwrap.dedent(
    """
    import json, sys, time
    from kubeflow.trainer import CustomTrainer, LocalProcessBackendConfig, TrainerClient
    from ddp_module import ddp_sum

    client = TrainerClient(LocalProcessBackendConfig())
    runtime = client.get_runtime("torch-distributed")
    times = []
    for i in range(int(sys.argv[1])):
        t0 = time.perf_counter()
        name = client.train(
            runtime=runtime,
            trainer=CustomTrainer(
                func=ddp_sum,
                packages_to_install=[f"torch @ file://{sys.argv[2]}"],
                env={"PET_NPROC_PER_NODE": "2"},
            ),
        )
        client.wait_for_job_status(name, polling_interval=0.05, timeout=900)
        times.append(time.perf_counter() - t0)
        log = "".join(client.get_job_logs(name))
        assert log.count("sum 3") == 2, log
    print(json.dumps(times))
    """
)


def torch_link_wheel(directory: Path) -> Path:
    """A wheel named `torch` that makes this environment's torch importable in a venv."""
    site = sysconfig.get_paths()["purelib"]
    import torch

    version = torch.__version__.split("+")[0]
    name = f"torch-{version}+link-py3-none-any.whl"
    path = directory / name
    info = f"torch-{version}+link.dist-info"
    files = {
        "kubelab_torch_link.pth": f"{site}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}+link\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: kubelab-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": "[console_scripts]\ntorchrun = torch.distributed.run:main\n",
    }
    record = []
    with zipfile.ZipFile(path, "w") as wheel:
        for arcname, text in files.items():
            data = text.encode()
            wheel.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{arcname},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def ensure_kubeflow_venv() -> Path:
    python = KF_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(KF_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "kubeflow==0.5.0"], check=True)
    return python


def side(python: str, program: str, work: Path, *args: str, env: dict[str, str]) -> list[float]:
    script = work / "side.py"
    script.write_text(program)
    done = subprocess.run(
        [python, str(script), *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise SystemExit(f"{python} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5, help="jobs per side")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = RESULTS / "train-bench"
    work.mkdir(exist_ok=True)
    (work / "ddp_module.py").write_text(DDP)
    wheel = torch_link_wheel(work)
    pythonpath = os.pathsep.join(
        [str(work), *(str(REPO / p) for p in ("pipelines", "client", "workloads"))]
    )
    env = {**os.environ, "PYTHONPATH": pythonpath}
    kubelab = side(sys.executable, KUBELAB_SIDE, work, str(args.repeat), env=env)
    kf_env = {k: v for k, v in env.items() if k not in ("VIRTUAL_ENV",)}
    kf_env["PATH"] = f"{KF_VENV / 'bin'}:{os.environ['PATH']}"
    kubeflow = side(
        str(ensure_kubeflow_venv()), KUBEFLOW_SIDE, work, str(args.repeat), str(wheel), env=kf_env
    )
    warm = statistics.median(kubelab[1:]) if len(kubelab) > 1 else kubelab[0]
    kf = statistics.median(kubeflow)
    load = os.getloadavg()[0]
    result = {
        "kubelab_s": kubelab,
        "kubeflow_s": kubeflow,
        "kubelab_cold_s": kubelab[0],
        "kubelab_warm_median_s": warm,
        "kubeflow_median_s": kf,
        "ratio_warm": kf / warm,
        "ratio_cold": kf / kubelab[0],
        "load_average": load,
        "cpus": os.cpu_count(),
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"train-{stamp}.json").write_text(json.dumps(result, indent=2))
    print(f"train() -> Complete, 1 node x 2 processes (gloo), load average {load:.1f}")
    print(f"  kubelab cold (first job, imports torch): {kubelab[0]:.2f} s")
    print(f"  kubelab warm (median of {len(kubelab) - 1}):          {warm:.2f} s")
    print(f"  Kubeflow SDK LocalProcessBackend (median of {len(kubeflow)}): {kf:.2f} s")
    print(f"  ratio: {kf / warm:.0f}x warm, {kf / kubelab[0]:.1f}x cold")


if __name__ == "__main__":
    main()
