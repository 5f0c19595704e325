"""The extension application: admin settings (traitlets), the client, handler registration."""

from __future__ import annotations

from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Enum, Float, Int, Unicode, default

from kubelab.client import Client
from kubelab.client.backends import BACKENDS
from kubelab.client.store import kubelab_home

from .handlers import default_handlers
from .identity import current_profile
from .pool import WorkerPool


class KubelabApp(ExtensionApp):
    """kubelab inside Jupyter Server.

    Settings go in `jupyter_server_config.py` as `c.KubelabApp.<name>`.
    """

    name = "kubelab"
    load_other_extensions = True

    default_backend = Enum(
        list(BACKENDS),
        default_value="local",
        config=True,
        help=(
            "Backend used when a run or job does not name one: 'local' runs on this "
            "machine with the embedded engine; 'kubernetes' submits to Kubeflow."
        ),
    )

    kubelab_home = Unicode(
        config=True,
        help=(
            "Folder for the run store (SQLite), artifacts and logs. Defaults to "
            "$KUBELAB_HOME or ~/.kubelab."
        ),
    )

    @default("kubelab_home")
    def _default_home(self) -> str:
        return str(kubelab_home())

    kfp_endpoint = Unicode(
        "",
        config=True,
        help=(
            "Base URL of a Kubeflow Pipelines API server (e.g. http://ml-pipeline.kubeflow:8888). "
            "When empty, runs with backend 'kubernetes' are refused with a 400."
        ),
    )

    kfp_token_file = Unicode(
        "",
        config=True,
        help=(
            "File holding the bearer token for the Kubeflow Pipelines API, read on every "
            "request. Default: $KF_PIPELINES_SA_TOKEN_PATH or "
            "/var/run/secrets/kubeflow/pipelines/token (the projected ServiceAccount token, "
            "audience pipelines.kubeflow.org, that KubelabSpawner mounts for profiles with "
            "kubeflow_pipelines: true) when it exists; no token otherwise."
        ),
    )

    kfp_namespace = Unicode(
        "",
        config=True,
        help=(
            "Kubernetes namespace (the user's Kubeflow profile) of runs and experiments when "
            "Kubeflow Pipelines is multi-user. Default: the pod's ServiceAccount namespace."
        ),
    )

    kfp_experiment = Unicode(
        "",
        config=True,
        help=(
            "Kubeflow Pipelines experiment for every run (found or created). Default: one "
            "experiment per pipeline, named as the pipeline (a notebook's name)."
        ),
    )

    kfp_ui_url = Unicode(
        "",
        config=True,
        help=(
            "Kubeflow Pipelines UI that run and log links point at, e.g. "
            "https://kubeflow.example.com/pipeline. Default: /pipeline (the central "
            "dashboard's, relative to the browser's origin, as kfp.Client links from a pod)."
        ),
    )

    strict_resources = Bool(
        False,
        config=True,
        help=(
            "Refuse a local step or job that asks for more GPUs than this machine has. "
            "By default it runs on what the machine has (the CPU on a laptop), with a "
            "warning on the run and the step, as kfp.local does."
        ),
    )

    validate_workers = Int(
        2,
        config=True,
        help=(
            "How many notebook validations (each runs the whole notebook in a process of "
            "its own) may run at once. They run on threads of their own, so they never "
            "slow other requests; as many again wait for a free worker, more get a 429."
        ),
    )

    validate_timeout = Float(
        600.0,
        config=True,
        help=(
            "Seconds one validation may run; then its process, and every process the "
            "notebook started, is killed and the report says the steps took too long."
        ),
    )

    _client: Client | None = None
    _validate_pool: WorkerPool | None = None

    def validate_pool(self) -> WorkerPool:
        if self._validate_pool is None:
            self._validate_pool = WorkerPool("validate", self.validate_workers)
        return self._validate_pool

    async def stop_extension(self) -> None:
        if self._validate_pool is not None:
            self._validate_pool.shutdown()

    def initialize_settings(self) -> None:
        # Runs left running by a server that crashed are marked so before anyone lists them.
        interrupted = self.client().store.mark_interrupted_runs()
        if interrupted:
            self.log.info("kubelab: marked %d interrupted run(s)", len(interrupted))

    def client(self) -> Client:
        """The one `Client` of this server: its store, the user's root, the settings."""
        if self._client is None:
            home = Path(self.kubelab_home)
            self._client = Client(
                self.default_backend,
                home=home,
                root=self.serverapp.root_dir,
                pipeline_root=home / "runs",
                kfp_endpoint=self.kfp_endpoint,
                kfp_token_file=self.kfp_token_file,
                kfp_namespace=self.kfp_namespace,
                kfp_experiment=self.kfp_experiment,
                kfp_ui_url=self.kfp_ui_url,
                profile=current_profile(),
                strict_resources=self.strict_resources,
            )
        return self._client

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers())
