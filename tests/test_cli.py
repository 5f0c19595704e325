"""The `kubelab` console script as a user runs it."""

from __future__ import annotations

import subprocess
import sys

from kubelab.pipelines import __version__


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # The module the `kubelab` script runs (the installed script may predate a move).
    return subprocess.run(
        [sys.executable, "-m", "kubelab.client.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"kubelab {__version__}"


def test_help_lists_usage() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "usage: kubelab" in result.stdout


def test_unknown_command_fails() -> None:
    result = run_cli("no-such-command")
    assert result.returncode != 0
    assert "invalid choice" in result.stderr
