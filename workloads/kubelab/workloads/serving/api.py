"""`serve()`: a model from a notebook (an object or a file) behind an inference server.

    from kubelab.workloads.serving import serve
    server = serve(clf, name="iris")            # local: a process on 127.0.0.1
    server.predict([[5.1, 3.5, 1.4, 0.2]])       # KServe v1 → array([0])
    server.infer(np.array(..., dtype="float32"))  # Open Inference Protocol v2
    server.stop()

    serve("models/iris.joblib", name="iris", backend="kubernetes")  # an InferenceService

In-memory models are saved first: joblib for scikit-learn (the file KServe's sklearn
runtime reads), `torch.jit.save` for TorchScript, `torch.export.save` for exported
programs, `save_model` for XGBoost/LightGBM boosters, the notebook's marshaller for
other objects with `predict()`, under
`$KUBELAB_HOME/models/<name>/`, which is in the user's home volume on a cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubelab.pipelines.errors import ConflictError, KubelabError, NotFoundError

from .workload import STEP, check_name

if TYPE_CHECKING:
    from kubelab.client.client import Client

KIND = "serving"
ACTIVE = ("pending", "running")


def save_model(model: Any, name: str, home: Path | None = None) -> Path:
    """Write an in-memory model where a server (local or KServe) can load it."""
    from kubelab.client.store import kubelab_home

    directory = (home or kubelab_home()) / "models" / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    module = type(model).__module__.split(".")[0]
    if module == "torch" and hasattr(model, "save") and hasattr(model, "graph"):
        path = directory / "model.pt"
        model.save(str(path))  # a ScriptModule: TorchScript, as Triton/KServe load it
        return path
    if module == "torch" and type(model).__name__ == "ExportedProgram":
        import torch

        path = directory / "model.pt2"
        torch.export.save(model, str(path))
        return path
    if module == "xgboost" and hasattr(model, "save_model") and not hasattr(model, "fit"):
        path = directory / "model.json"
        model.save_model(str(path))
        return path
    if module == "lightgbm" and hasattr(model, "save_model") and not hasattr(model, "fit"):
        path = directory / "model.txt"
        model.save_model(str(path))
        return path
    if module != "torch" and not callable(getattr(model, "predict", None)):
        raise KubelabError(
            f"a {type(model).__name__} cannot be served: give a model with predict() "
            "(scikit-learn, XGBoost, LightGBM, torch module, or your own class)",
            field="model",
        )
    if module == "sklearn":  # the file KServe's sklearn runtime reads, also on a cluster
        import joblib

        path = directory / "model.joblib"
        joblib.dump(model, path)
        return path
    from kubelab.pipelines.notebook import marshal

    marshal.save(model, directory)
    return directory


def default_name(model_or_path: Any) -> str:
    """A server name from a file's or a class's name (`model.joblib` → `model`)."""
    if isinstance(model_or_path, str | os.PathLike):
        stem = Path(model_or_path).stem
    else:
        stem = type(model_or_path).__name__
    cleaned = "".join(c if c.isalnum() else "-" for c in stem.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"model-{cleaned}".strip("-")
    return cleaned[:45].rstrip("-")


def serve(
    model_or_path: Any,
    name: str | None = None,
    *,
    format: str | None = None,
    predict_proba: bool = False,
    port: int | None = None,
    backend: str | None = None,
    resources: dict[str, Any] | None = None,
    runtime: str | None = None,
    wait: bool = True,
    timeout: float = 120.0,
    client: Client | None = None,
) -> ModelServer:
    """Serve a model; returns once it answers (`wait`), or raises with the reason it
    did not (the model failed to load, the port is taken...).

    `model_or_path` is a file or directory (sklearn `.joblib`/`.pkl`, XGBoost
    `.json`/`.ubj`, LightGBM `.txt`, TorchScript `.pt`, a `.py` file with a model class,
    a notebook step's output folder) or the model object itself. `name` is the model's
    name in `/v2/models/{name}` (default: from the file or class name). A stopped or
    failed server of the same name is replaced; a running one is a `ConflictError`.
    """
    from kubelab.client.client import Client

    client = client or Client(backend, root=user_root())
    name = check_name(name or default_name(model_or_path))
    _replace_finished(client, name)
    if isinstance(model_or_path, str | os.PathLike):
        model = os.path.abspath(os.fspath(model_or_path))  # as the caller sees it
    else:
        model = str(save_model(model_or_path, name, client.home))
    spec: dict[str, Any] = {"name": name, "model": model, "predict_proba": predict_proba}
    for key, value in (
        ("format", format),
        ("port", port),
        ("resources", resources),
        ("runtime", runtime),
    ):
        if value is not None:
            spec[key] = value
    server = ModelServer(start(client, spec, backend), client)
    if wait:
        server.wait_ready(timeout)
    return server


def user_root() -> Path:
    """Where a notebook's or a terminal's model paths may point: the home folder (the
    Jupyter root and, on a cluster, the home volume), or the working directory when it
    lies elsewhere."""
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    return home if cwd.is_relative_to(home) else cwd


def start(client: Client, spec: dict[str, Any], backend: str | None = None) -> str:
    """Create the serving job named after the model (replacing a stopped one); its name."""
    name = check_name(spec.get("name"))
    _replace_finished(client, name)
    return str(client.create_job(KIND, spec, backend, name=name))


def manifests(client: Client, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The InferenceService `spec` would become on the client's cluster; nothing created."""
    from kubelab.workloads import registry

    workload = registry.workload(KIND)
    name = check_name(spec.get("name"))
    normalised = workload.validate(spec, client.root)
    cluster = client.job_backend("kubernetes").cluster_context(workload, name)
    return workload.manifests(normalised, name=name, cluster=cluster)


def _replace_finished(client: Client, name: str) -> None:
    try:
        job = client.get_job(name)
    except NotFoundError:
        return
    if job["kind"] != KIND:
        raise ConflictError(f"a {job['kind']} job is named {name!r}; pick another name")
    if job["state"] in ACTIVE:
        raise ConflictError(
            f"a model server named {name!r} is already {job['state']}; stop it first "
            f"(server.stop(), or `kubelab jobs cancel {name}`)",
            job=name,
        )
    client.delete_job(name)


class ModelServer:
    """A model server started by `serve()` (or found by name with `ModelServer(name)`)."""

    def __init__(self, name: str, client: Client | None = None) -> None:
        if client is None:
            from kubelab.client.client import Client

            client = Client()
        self.client = client
        self.name = name

    # -- state --------------------------------------------------------------------------------

    def job(self) -> dict[str, Any]:
        return self.client.get_job(self.name)

    @property
    def state(self) -> str:
        return str(self.job()["state"])

    @property
    def url(self) -> str | None:
        """Base URL: `http://127.0.0.1:PORT` locally, the InferenceService URL on a cluster."""
        return server_url(self.job())

    def wait_ready(self, timeout: float = 120.0) -> ModelServer:
        """Block until the model answers; `KubelabError` with the reason when it cannot."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            job = self.job()
            if job["state"] == "running" and server_ready(job):
                return self
            if job["state"] not in ACTIVE:
                raise KubelabError(
                    f"model server {self.name} {job['state']}: {job.get('error') or 'see its log'}"
                    + _log_tail(self.client, self.name),
                    job=self.name,
                    state=job["state"],
                )
            if time.monotonic() > deadline:
                raise KubelabError(
                    f"model server {self.name} is not ready after {timeout:.0f}s "
                    f"(state {job['state']})" + _log_tail(self.client, self.name),
                    job=self.name,
                )
            # A store read is cheap: look often while a local model typically loads.
            time.sleep(0.02 if time.monotonic() - started < 10 else 0.5)

    def stop(self) -> dict[str, Any]:
        """Stop serving; the job is then "cancelled" (its record and log stay)."""
        return self.client.cancel_job(self.name)

    def logs(self) -> str:
        return str(self.client.job_logs(self.name, STEP)["text"])

    # -- calls --------------------------------------------------------------------------------

    def _call(self, path: str, payload: Any = None) -> Any:
        url = internal_url(self.job())
        if not url:
            raise KubelabError(f"model server {self.name} has no URL yet (state {self.state})")
        return call(url + path, payload)

    def metadata(self) -> dict[str, Any]:
        """The v2 model metadata (inputs and outputs with names, datatypes, shapes)."""
        return dict(self._call(f"/v2/models/{self.name}"))

    def predict(self, instances: Any) -> Any:
        """KServe v1 `:predict`; returns the `predictions` (a numpy array when possible)."""
        if hasattr(instances, "tolist"):
            instances = instances.tolist()
        predictions = self._call(f"/v1/models/{self.name}:predict", {"instances": instances})[
            "predictions"
        ]
        try:
            import numpy as np

            return np.asarray(predictions)
        except (ImportError, ValueError):
            return predictions

    def infer(self, inputs: Any) -> dict[str, Any]:
        """Open Inference Protocol v2 infer: an array (one input) or `{name: array}`;
        returns `{output name: numpy array}`."""
        import numpy as np

        from .protocol import datatype_of

        if not isinstance(inputs, dict):
            inputs = {"input-0": inputs}
        tensors = []
        for input_name, value in inputs.items():
            array = np.asarray(value)
            tensors.append(
                {
                    "name": input_name,
                    "shape": list(array.shape),
                    "datatype": datatype_of(array),
                    "data": array.reshape(-1).tolist(),
                }
            )
        response = self._call(f"/v2/models/{self.name}/infer", {"inputs": tensors})
        return {
            out["name"]: np.asarray(out["data"]).reshape(out["shape"])
            for out in response["outputs"]
        }

    def __repr__(self) -> str:
        job = self.job()
        return f"ModelServer({self.name!r}, state={job['state']!r}, url={server_url(job)!r})"


def server_url(job: dict[str, Any]) -> str | None:
    """A serving job's base URL, from its `server` step (local) or the cluster's status."""
    for step in job.get("steps") or []:
        if step.get("name") == STEP and (step.get("outputs") or {}).get("url"):
            return str(step["outputs"]["url"])
    return job.get("url")


def internal_url(job: dict[str, Any]) -> str | None:
    """Where a process next to the user's notebook reaches the server: the local URL, or
    the InferenceService's cluster-local address (its public URL may not resolve here)."""
    for step in job.get("steps") or []:
        if step.get("name") == STEP and (step.get("outputs") or {}).get("internal_url"):
            return str(step["outputs"]["internal_url"])
    return server_url(job)


def server_ready(job: dict[str, Any]) -> bool:
    for step in job.get("steps") or []:
        if step.get("name") == STEP:
            outputs = step.get("outputs") or {}
            return bool(outputs.get("ready", job.get("backend") != "local"))
    return job.get("backend") != "local" and job["state"] == "running"


def _log_tail(client: Client, name: str, lines: int = 15) -> str:
    try:
        text = str(client.job_logs(name, STEP)["text"])
    except KubelabError:
        return ""
    tail = "\n".join(text.rstrip().splitlines()[-lines:])
    return f"\n--- last lines of its log ---\n{tail}" if tail else ""


def call(url: str, payload: Any = None, timeout: float = 60.0) -> Any:
    """One JSON request to a model server; its `{"error": ...}` becomes a `KubelabError`."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            message = json.loads(body).get("error") or body.decode(errors="replace")
        except ValueError:
            message = body.decode(errors="replace")
        raise KubelabError(
            f"{error.code} from the model server: {message}", status=error.code
        ) from None
    except urllib.error.URLError as error:
        raise KubelabError(f"cannot reach the model server at {url}: {error.reason}") from None
