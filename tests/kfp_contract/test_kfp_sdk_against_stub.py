"""The stub checked from the other side: the real `kfp.Client` (KFP 2.17's SDK and its
generated `kfp_server_api`, in .venv-kfp) creates, reads, lists and terminates runs on
it, and kubelab reads what kfp.Client made. If the stub's routes, request checks or
answers drifted from what KFP's own client sends and parses, this fails."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from kfp_contract.kfp_env import NAMESPACE, Kfp

from kubelab.pipelines.compiler.compiler import render
from kubelab.pipelines.notebook import compile_notebook

KFP_PYTHON = Path(__file__).resolve().parents[2] / ".venv-kfp" / "bin" / "python"

_SCRIPT = """
import json, sys
import kfp
url, package, token, namespace = sys.argv[1:]
client = kfp.Client(host=url, existing_token=token or None)
namespace = namespace or None
started = client.create_run_from_pipeline_package(
    package, arguments={"rows": 3}, experiment_name="from-kfp-sdk", namespace=namespace
)
run = client.get_run(started.run_id)
listed = client.list_runs(namespace=namespace, page_size=10, sort_by="created_at desc")
client.terminate_run(started.run_id)
print(json.dumps({
    "run_id": started.run_id,
    "state": run.state,
    "experiment_id": run.experiment_id,
    "listed": [r.run_id for r in listed.runs or []],
    "multi_user": client.get_kfp_healthz().multi_user,
}))
"""


@pytest.mark.skipif(not KFP_PYTHON.exists(), reason="needs .venv-kfp with the real kfp SDK")
def test_the_real_kfp_client_works_against_the_stub(kfp: Kfp, notebook: Path, tmp_path: Path):
    package = tmp_path / "train.yaml"
    package.write_text(render(compile_notebook(notebook).pipeline_spec(), None, str(package)))
    token = kfp.token_file.read_text() if kfp.multi_user else ""
    namespace = NAMESPACE if kfp.multi_user else ""
    done = subprocess.run(
        [str(KFP_PYTHON), "-c", _SCRIPT, kfp.stub.url, str(package), token, namespace],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])

    assert answer["multi_user"] is kfp.multi_user
    assert answer["state"] == "PENDING" and answer["run_id"] in answer["listed"]
    assert kfp.stub.experiments[answer["experiment_id"]].display_name == "from-kfp-sdk"
    assert all(op for _, _, op, _, _ in kfp.stub.requests)  # only the swagger's routes
    # kubelab reads the run kfp.Client made (terminated: CANCELING, still active).
    run = kfp.client().get_run(answer["run_id"], backend="kubernetes")
    assert (run["state"], run["parameters"]) == ("running", {"rows": 3})
    assert sorted(s["name"] for s in run["steps"]) == sorted(
        compile_notebook(notebook).task_metadata()
    )
