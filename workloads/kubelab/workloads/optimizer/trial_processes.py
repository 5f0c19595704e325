"""The ways a local trial runs, one class each, behind `TrialProcess`.

- `CommandTrial`: the trialSpec's primary container command (with
  `${trialParameters.x}` substituted), forked by the engine's worker so it starts fast,
  has its own process group and dies with the runner's process (Katib's Job,
  TrainJob or PyTorchJob trial templates).
- `NotebookTrial`: a pipeline run of the tuned notebook on the local engine, so steps
  upstream of every tuned parameter run once and come from the cache for the others.
- `TrainingTrial`: a local training job with the trial's parameters as `func_args`.

Each reports its metrics as they come (`read`) and how it ended (`exit_code`,
`error`); the runner (`runner.py`) decides what that means for the experiment.
"""

from __future__ import annotations

import sys
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.errors import KubelabError
from kubelab.workloads.optimizer import experiment as katib
from kubelab.workloads.optimizer.collect import Collector, Point
from kubelab.workloads.optimizer.earlystop import RuleChecker, StopRule

if TYPE_CHECKING:
    from kubelab.workloads.optimizer.runner import ExperimentRunner


def trial_name(index: int) -> str:
    return f"trial-{index:04d}"


class TrialProcess(ABC):
    """One trial: parameters, metrics as they come, and how it ended."""

    def __init__(
        self,
        runner: ExperimentRunner,
        index: int,
        number: int,
        assignments: dict[str, str],
        rules: list[StopRule],
    ) -> None:
        self.runner = runner
        self.name = trial_name(index)
        self.number = number
        self.assignments = assignments
        self.parameters = runner.typed(assignments)
        self.collector = Collector.for_experiment(runner.experiment)
        objective = runner.experiment["spec"]["objective"]
        self.checker = RuleChecker(rules, objective["objectiveMetricName"], objective["type"])
        self.rules = rules
        self.dir = runner.job_dir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "trial.log"
        self.done = threading.Event()
        self.exit_code: int | None = None
        self.early_stopped = False
        self.error: str | None = None
        self.started_at = time.time()
        self.cpus = 0
        self.gpu_ids: list[str] = []

    @abstractmethod
    def start(self) -> None:
        """Start the trial; `done` is set (and the runner woken) when it ends."""

    @abstractmethod
    def kill(self) -> None: ...

    @abstractmethod
    def read(self, final: bool = False) -> list[Point]:
        """New metric points since the last read."""

    def note(self, text: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"kubelab: {text}\n")


class CommandTrial(TrialProcess):
    """The primary container's command as a local process (Katib's Job/TrainJob/PyTorchJob)."""

    def start(self) -> None:
        from kubelab.pipelines.local.preload import fork_server

        runner = self.runner
        run_spec = katib.substitute(
            runner.experiment, self.assignments, trial_name=f"{runner.job_id}-{self.name}"
        )
        template = runner.experiment["spec"]["trialTemplate"]
        container = katib.primary_container(run_spec, template["primaryContainerName"]) or {}
        argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable  # "the current environment": the image is not pulled
        env = {"PYTHONUNBUFFERED": "1"}
        notes = [f"trial {self.name} of experiment {runner.job_id}: {self.parameters}"]
        image = container.get("image")
        if image and image != "local":
            notes.append(f"image {image!r} is not pulled: the command runs in this environment")
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
            else:
                notes.append(
                    f"env {item.get('name')} has no plain value here (valueFrom) and is left unset"
                )
        self.metrics_file: Path | None = None
        remote_file = runner.metrics_file_path
        if remote_file:
            self.metrics_file = self.dir / "metrics.log"
            argv = [a.replace(remote_file, str(self.metrics_file)) for a in argv]
            env = {k: v.replace(remote_file, str(self.metrics_file)) for k, v in env.items()}
            notes.append(f"metrics file {remote_file} is {self.metrics_file} here")
        cwd = container.get("workingDir")
        if not cwd or not Path(cwd).is_dir():
            if cwd:
                notes.append(f"workingDir {cwd} does not exist here; running in {runner.base_dir}")
            cwd = str(runner.base_dir)
        if self.gpu_ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpu_ids)
        with open(self.log_path, "w") as log:
            log.write("".join(f"kubelab: {n}\n" for n in notes))
        self._source = self.metrics_file or self.log_path
        self._offset = 0
        self.started_at = time.time()
        payload: dict[str, Any] = {"env": env, "cwd": cwd, "log_path": str(self.log_path)}
        if len(argv) > 2 and argv[0] == sys.executable and argv[1] == "-c":
            # `python -c` (a tuned function): forked from the warm worker, no new interpreter.
            payload.update(
                entry="kubelab.workloads.optimizer.trial:run_code", code=argv[2], args=argv[3:]
            )
        else:
            payload["argv"] = argv
        self.task = fork_server().run(payload)
        threading.Thread(target=self._wait, daemon=True, name=f"kubelab-{self.name}").start()

    def _wait(self) -> None:
        self.exit_code = self.task.wait()
        self.done.set()
        self.runner.wake.set()

    def kill(self) -> None:
        self.task.kill()

    def read(self, final: bool = False) -> list[Point]:
        try:
            with open(self._source, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            chunk = b""
        text = chunk.decode("utf-8", errors="replace")
        if self._source == self.log_path:
            text = "\n".join(line for line in text.split("\n") if not line.startswith("kubelab: "))
        return self.collector.feed(text, final=final)


class NotebookTrial(TrialProcess):
    """A pipeline run of the tuned notebook on the local engine, sharing its cache."""

    def start(self) -> None:
        from kubelab.pipelines.local import engine

        runner = self.runner
        notebook = runner.notebook()
        from kubelab.workloads.optimizer.trial import notebook_arguments

        arguments = notebook_arguments(notebook.pipeline_spec(), self.assignments)
        self.started_at = time.time()
        self.run_id = engine.start_run(
            notebook.pipeline_spec(),
            arguments,
            store=runner.store,
            pipeline_root=str(runner.job_dir / "pipeline"),
            run_name=f"{runner.job_id}-{self.name}",
            source=notebook.source_path,
            task_metadata=notebook.task_metadata(),
            workdir=str(Path(notebook.source_path or runner.base_dir).parent),
            preload=runner.preload,
        )
        self.note(f"trial {self.name}: pipeline run {self.run_id} with {arguments}")
        threading.Thread(target=self._wait, daemon=True, name=f"kubelab-{self.name}").start()

    def _wait(self) -> None:
        from kubelab.pipelines.local import engine

        result = None
        while result is None:
            result = engine.wait_run(self.run_id, timeout=1.0)
            if result is None and self.runner.store.get_run(self.run_id)["state"] not in (
                "pending",
                "running",
            ):
                break
        run = self.runner.store.get_run(self.run_id)
        self.exit_code = 0 if run["state"] == "succeeded" else 1
        if run["error"]:
            self.error = run["error"]
        self.done.set()
        self.runner.wake.set()

    def kill(self) -> None:
        from kubelab.pipelines.local import engine

        engine.cancel_run(self.run_id, self.runner.store)

    def read(self, final: bool = False) -> list[Point]:
        if not final:
            return []
        store = self.runner.store
        run = store.get_run(self.run_id)
        points: list[Point] = []
        with open(self.log_path, "a") as log:
            for step in run["steps"]:
                info = store.task_info(self.run_id, step["name"])
                cached = " (cached)" if step["cached"] else ""
                log.write(f"kubelab: step {step['display_name']}: {step['state']}{cached}\n")
                path = info.get("log_path")
                if path and Path(path).exists() and not step["cached"]:
                    text = Path(path).read_text(errors="replace")
                    log.write(text if text.endswith("\n") or not text else text + "\n")
                    points += self.collector.feed(
                        "\n".join(x for x in text.split("\n") if not x.startswith("kubelab: ")),
                        final=True,
                    )
        # The notebook's pipeline-metrics cell is what its trial reports last.
        final_metrics = {
            k: float(v)
            for k, v in run["metrics"].items()
            if k in self.collector.names and isinstance(v, int | float)
        }
        if final_metrics:
            line = " ".join(f"{k}={v!r}" for k, v in final_metrics.items())
            with open(self.log_path, "a") as log:
                log.write(line + "\n")
            points += self.collector.feed(line, final=True)
        return points


class TrainingTrial(TrialProcess):
    """A local training job (kind "training") with the trial's parameters as `func_args`:
    its nodes run as the trainer runs them; node-0's output is the trial's StdOut."""

    def start(self) -> None:
        from kubelab.workloads import registry
        from kubelab.workloads.optimizer.templates import training_spec

        runner = self.runner
        self.workload = registry.workload("training")
        spec = self.workload.validate(training_spec(runner.template, self.parameters), runner.root)
        self.job = f"{runner.job_id}-{self.name}"
        runner.store.create_run(
            self.job, {}, run_id=self.job, kind="training", backend="local", spec=spec
        )
        self.note(f"trial {self.name}: training job {self.job} with {self.parameters}")
        self.started_at = time.time()
        self._offset = 0
        self.workload.start_local(self.job, spec, runner.ctx)
        threading.Thread(target=self._wait, daemon=True, name=f"kubelab-{self.name}").start()

    def _wait(self) -> None:
        from kubelab.client.store import FINAL_STATES

        while True:
            job = self.runner.store.get_run(self.job)
            if job["state"] in FINAL_STATES:
                break
            time.sleep(0.1)
        self.exit_code = 0 if job["state"] == "succeeded" else 1
        self.error = job["error"]
        self.done.set()
        self.runner.wake.set()

    def kill(self) -> None:
        self.workload.cancel_local(self.job, self.runner.ctx)

    def _node_log(self) -> Path | None:
        try:
            path = self.runner.store.task_info(self.job, "node-0").get("log_path")
        except KubelabError:
            return None
        return Path(path) if path else None

    def read(self, final: bool = False) -> list[Point]:
        path = self._node_log()
        chunk = ""
        if path is not None and path.exists():
            with open(path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read().decode("utf-8", errors="replace")
                self._offset = f.tell()
            with open(self.log_path, "a") as log:  # the trial's log shows node-0's
                log.write(chunk)
        return self.collector.feed(chunk, final=final)


TRIAL_KINDS: dict[str, type[TrialProcess]] = {
    "notebook": NotebookTrial,
    "training": TrainingTrial,
}
