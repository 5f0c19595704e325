"""The extension application: admin settings (traitlets) and handler registration."""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Enum, Unicode, default

from .backends import Backend, KubeflowBackend, LocalBackend
from .handlers import default_handlers


class KubelabApp(ExtensionApp):
    """kubelab inside Jupyter Server.

    Settings go in `jupyter_server_config.py` as `c.KubelabApp.<name>`.
    """

    name = "kubelab"
    load_other_extensions = True

    default_backend = Enum(
        ["local", "kubernetes"],
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
        return os.environ.get("KUBELAB_HOME") or str(Path.home() / ".kubelab")

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

    _local_backend: LocalBackend | None = None

    def initialize_settings(self) -> None:
        # Runs left running by a server that crashed are marked so before anyone lists them.
        interrupted = self.local_backend().mark_interrupted_runs()
        if interrupted:
            self.log.info("kubelab: marked %d interrupted run(s)", len(interrupted))

    def local_backend(self) -> LocalBackend:
        if self._local_backend is None:
            self._local_backend = LocalBackend(self.kubelab_home)
        return self._local_backend

    def backend(self, name: str | None) -> Backend:
        """The backend called `name` (the default one when None); 400 when unusable."""
        from kubelab.pipelines.errors import KubelabError

        name = name or self.default_backend
        if name == "local":
            return self.local_backend()
        if name == "kubernetes":
            if not self.kfp_endpoint:
                raise KubelabError(
                    "the kubernetes backend is not configured: set "
                    "c.KubelabApp.kfp_endpoint to a Kubeflow Pipelines API URL",
                    backend=name,
                )
            token = None
            if self.kfp_token_file:
                token = Path(self.kfp_token_file).read_text().strip() or None
            return KubeflowBackend(self.kfp_endpoint, token=token)
        raise KubelabError(f"unknown backend {name!r}; backends: local, kubernetes", backend=name)

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers())
