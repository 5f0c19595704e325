"""The `kubelab` console script as a user runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys

from kubelab.pipelines import __version__


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("kubelab") or sys.executable
    prefix = [] if exe.endswith("kubelab") else ["-m", "kubelab.pipelines.cli.main"]
    return subprocess.run([exe, *prefix, *args], capture_output=True, text=True, timeout=60)


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
