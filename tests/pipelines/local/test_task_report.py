"""What a task reports about the files it read and wrote (the audit hook runs in a child
process: an audit hook cannot be removed again)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
from kubelab.pipelines import task_report
folder, outputs = sys.argv[1], sys.argv[2]
task_report.watch_reads(folder, exclude=outputs)
sys.path.insert(0, folder)
open(folder + "/data.csv").read()
open(folder + "/written.txt", "w").write("x")
open(outputs + "/artifact.bin").read()
open(folder + "/.ipynb_checkpoints/old.csv").read()
open(folder + "/env/lib/site-packages/lib.py").read()
import helpers
print(json.dumps(task_report.collect()))
"""


def test_reads_under_the_folder_are_reported_with_digests(tmp_path: Path) -> None:
    folder, outputs = tmp_path / "nb", tmp_path / "nb" / "local_outputs"
    for path in (
        folder / "data.csv",
        folder / "helpers.py",
        outputs / "artifact.bin",
        folder / ".ipynb_checkpoints" / "old.csv",
        folder / "env" / "lib" / "site-packages" / "lib.py",
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")
    for _ in range(2):  # the second time `helpers` is imported from its cached bytecode
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(folder), str(outputs)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        report = json.loads(out.stdout)
        reads = report["reads"]
        assert [Path(r["path"]).name for r in reads] == ["data.csv", "helpers.py"]
        assert all(r["digest"].startswith("xxh3-128:") for r in reads)
        # Written files are its outputs (lineage); bytecode Python caches is not.
        assert [Path(w["path"]).name for w in report["writes"]] == ["written.txt"]
        assert report["writes"][0]["digest"].startswith("xxh3-128:")
