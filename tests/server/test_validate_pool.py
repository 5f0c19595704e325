"""Notebook validation runs the user's whole notebook: it gets threads of its own and a
time limit, so long validations never stall the rest of the API."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kubelab_api import call, refused


def notebook(path: Path, body: str) -> None:
    cells = [nbformat.v4.new_code_cell(body), nbformat.v4.new_code_cell("y = x + 1")]
    cells[0].metadata["tags"] = ["step:slow"]
    cells[1].metadata["tags"] = ["step:after"]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


SLOW = (
    "import os, time\n"
    "open(f'started-{os.getpid()}', 'w').close()\n"
    "time.sleep(float(os.environ.get('KUBELAB_TEST_SLEEP', '6')))\n"
    "x = 1"
)
# Starts a grandchild that would outlive a plain kill of the validation process.
HANGS = (
    "import subprocess, time\n"
    "child = subprocess.Popen(['sleep', '300'])\n"
    "open('grandchild.pid', 'w').write(str(child.pid))\n"
    "time.sleep(300)\n"
    "x = 1"
)


async def timed(jp_fetch, method: str, *parts: str, body: Any = None) -> float:
    started = time.perf_counter()
    status, _ = await call(jp_fetch, method, *parts, body=body)
    assert status == 200, parts
    return time.perf_counter() - started


async def wait_for_files(folder: Path, pattern: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(list(folder.glob(pattern))) < count:
        assert time.monotonic() < deadline, f"fewer than {count} {pattern} after {timeout} s"
        await asyncio.sleep(0.1)


async def test_status_compile_and_runs_answer_at_once_while_two_validations_run(
    jp_fetch, jp_root_dir: Path
) -> None:
    notebook(jp_root_dir / "slow.ipynb", SLOW)
    validations = [
        asyncio.ensure_future(
            call(jp_fetch, "POST", "pipelines", "validate", body={"path": "slow.ipynb"})
        )
        for _ in range(2)
    ]
    await wait_for_files(jp_root_dir, "started-*", 2)  # both are running the notebook
    assert not any(v.done() for v in validations)
    for method, parts, body in (
        ("GET", ("status",), None),
        ("POST", ("pipelines", "compile"), {"path": "slow.ipynb"}),
        ("GET", ("runs",), None),
    ):
        assert await timed(jp_fetch, method, *parts, body=body) < 1.0, parts
    for status, report in await asyncio.gather(*validations):
        assert status == 200 and report["ok"], report
        assert [s["name"] for s in report["steps"]] == ["slow", "after"]


@pytest.mark.parametrize("kubelab_settings", [{"validate_workers": 1}], indirect=True)
async def test_one_worker_one_waiting_then_busy(jp_fetch, jp_root_dir: Path) -> None:
    notebook(jp_root_dir / "slow.ipynb", SLOW)
    first = asyncio.ensure_future(
        call(jp_fetch, "POST", "pipelines", "validate", body={"path": "slow.ipynb"})
    )
    await wait_for_files(jp_root_dir, "started-*", 1)
    second = asyncio.ensure_future(
        call(jp_fetch, "POST", "pipelines", "validate", body={"path": "slow.ipynb"})
    )
    await asyncio.sleep(0.5)
    status, error = await refused(
        jp_fetch, "POST", "pipelines", "validate", body={"path": "slow.ipynb"}
    )
    assert status == 429
    assert "2 validate requests are running or waiting (at most 1 run at once)" in error["message"]
    assert len(list(jp_root_dir.glob("started-*"))) == 1  # the second one waits its turn
    for status, report in await asyncio.gather(first, second):
        assert status == 200 and report["ok"]
    assert len(list(jp_root_dir.glob("started-*"))) == 2


@pytest.mark.parametrize("kubelab_settings", [{"validate_timeout": 3}], indirect=True)
async def test_a_validation_past_its_time_limit_is_killed_with_what_it_started(
    jp_fetch, jp_root_dir: Path
) -> None:
    notebook(jp_root_dir / "hangs.ipynb", HANGS)
    started = time.monotonic()
    status, report = await call(
        jp_fetch, "POST", "pipelines", "validate", body={"path": "hangs.ipynb"}
    )
    assert time.monotonic() - started < 30
    assert status == 200 and not report["ok"]
    assert report["errors"] == [{"message": "the notebook's steps took over 3 s"}]
    grandchild = int((jp_root_dir / "grandchild.pid").read_text())
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        # A zombie (killed, not yet reaped by init) counts as gone.
        state = Path(f"/proc/{grandchild}/stat").read_text().split()[2]
        if state == "Z":
            break
        assert time.monotonic() < deadline, "the notebook's child outlived the validation"
        await asyncio.sleep(0.1)
