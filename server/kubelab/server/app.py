"""The extension application: admin settings (traitlets), the client, handler registration."""

from __future__ import annotations

from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Enum, Unicode, default

from kubelab.client import Client
from kubelab.client.backends import BACKENDS
from kubelab.client.store import kubelab_home

from .handlers import default_handlers
from .identity import current_profile


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
        help="File holding a bearer token for the Kubeflow Pipelines API (optional).",
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

    _client: Client | None = None

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
                profile=current_profile(),
                strict_resources=self.strict_resources,
            )
        return self._client

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers())
