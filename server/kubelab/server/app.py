"""The extension application: admin settings (traitlets) and handler registration."""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Enum, Unicode, default

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

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers())
