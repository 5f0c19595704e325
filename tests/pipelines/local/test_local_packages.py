"""A component's packages are installed exactly as asked, from the indexes it names.

Wheels are built in the test and served by a loopback "simple" index, so nothing
reaches a public index: names that start with `kfp`/`kubelab` are ordinary packages
(only `kfp` and `kubelab` themselves are provided by the engine), `pip_index_urls`
are honoured, and version pins are checked against what is installed.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelab.client.store import RunStore
from kubelab.pipelines import compiler, dsl
from kubelab.pipelines.local.engine import run_pipeline
from kubelab.pipelines.requirements import missing, parse_pip_install, provided_by_engine

REPO = Path(__file__).resolve().parents[3]
KFP_PYTHON = REPO / ".venv-kfp" / "bin" / "python"

# name, version: kfp-pipeline-spec is installed in kubelab's venv (2.17), so 99.0.0 must
# come from the index; the others are not installed at all.
PACKAGES = [
    ("kfp-kubernetes", "0.0.1"),
    ("kfp-server-api", "0.0.2"),
    ("kfp-pipeline-spec", "99.0.0"),
    ("kubelab-utils", "0.1.0"),
]


def build_wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel whose module `<name>_probe` holds VERSION."""
    dist = name.replace("-", "_")
    module = f"{dist}_probe.py"
    files = {
        module: f"VERSION = {version!r}\n",
        f"{dist}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ),
        f"{dist}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: kubelab-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = f"{dist}-{version}.dist-info/RECORD"
    lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        lines.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    lines.append(f"{record},,")
    files[record] = "\n".join(lines) + "\n"
    wheel = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture(scope="module")
def simple_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PEP 503 index on loopback: /simple/<name>/ lists that project's wheels."""
    root = tmp_path_factory.mktemp("index")
    for name, version in PACKAGES:
        project = root / "simple" / name
        project.mkdir(parents=True)
        build_wheel(project, name, version)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()


@dsl.component
def installed_version(name: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(name)


def test_only_kfp_and_kubelab_themselves_are_provided_by_the_engine() -> None:
    assert provided_by_engine("kfp==2.17.0") and provided_by_engine("KFP[kubernetes]")
    assert provided_by_engine("kubelab")
    for name in ("kfp-kubernetes", "kfp_server_api", "kfp-pipeline-spec", "kubelab-utils"):
        assert not provided_by_engine(name)
    pip = parse_pip_install(
        "python3 -m pip install --quiet -i https://a/simple --extra-index-url=https://b/simple "
        "--trusted-host a -f /wheels 'kfp==2.17.0' '--no-deps' kfp-kubernetes && \"$0\"\n"
        "pip3 install --index-url https://a/simple 'pandas>=2; python_version>\"3\"'"
    )
    assert pip.requirements == ("kfp-kubernetes", 'pandas>=2; python_version>"3"')
    assert pip.skipped == (("kfp==2.17.0", "the engine provides the KFP runtime itself"),)
    assert pip.pip_options() == [
        "--index-url", "https://a/simple", "--extra-index-url", "https://b/simple",
        "--trusted-host", "a", "--find-links", "/wheels",
    ]  # fmt: skip


def test_version_pins_are_checked_not_only_names() -> None:
    assert missing(["kfp-pipeline-spec==99.0.0"]) == ["kfp-pipeline-spec==99.0.0"]
    assert missing(["kfp-pipeline-spec>=2"]) == []
    assert missing(["no-such-package-kubelab-test"]) == ["no-such-package-kubelab-test"]
    # The same check in a container's prologue: exit 1 makes it run pip.
    check = [sys.executable, "-m", "kubelab.pipelines.requirements"]
    assert subprocess.run([*check, "kfp-pipeline-spec>=2"]).returncode == 0
    refused = subprocess.run([*check, "kfp-pipeline-spec==99.0.0"], capture_output=True, text=True)
    assert (
        refused.returncode == 1 and "kfp-pipeline-spec==99.0.0 is not installed" in refused.stderr
    )


@pytest.mark.parametrize(("name", "version"), PACKAGES)
def test_each_package_is_installed_from_the_components_index(
    name: str, version: str, simple_index: str, tmp_path: Path
) -> None:
    probe = dsl.component(
        installed_version.python_func,
        packages_to_install=[f"{name}=={version}"],
        pip_index_urls=[simple_index],
    )

    @dsl.pipeline(name="probe")
    def pipeline() -> str:
        return probe(name=name).output

    store = RunStore(tmp_path / "runs.db")
    result = run_pipeline(
        compiler.build_pipeline_spec(pipeline), store=store, pipeline_root=tmp_path / "out"
    )
    assert result.succeeded, result.error
    assert result.outputs["Output"] == version
    log = Path(store.task_info(result.run_id, "installed-version")["log_path"]).read_text()
    assert f"--index-url {simple_index}" in log


def test_kfp_alone_is_skipped_and_the_log_says_why(tmp_path: Path, kubelab_home: Path) -> None:
    probe = dsl.component(installed_version.python_func, packages_to_install=["kfp==2.17.0"])

    @dsl.pipeline(name="sdk")
    def pipeline() -> str:
        return probe(name="kfp-pipeline-spec").output

    store = RunStore(tmp_path / "runs.db")
    result = run_pipeline(
        compiler.build_pipeline_spec(pipeline), store=store, pipeline_root=tmp_path / "out"
    )
    assert result.succeeded, result.error
    log = Path(store.task_info(result.run_id, "installed-version")["log_path"]).read_text()
    assert "kubelab: not installing 'kfp==2.17.0': the engine provides the KFP runtime" in log
    assert not (kubelab_home / "venvs").exists()  # nothing was installed


KFP_PIPELINE = """
from kfp import compiler, dsl

@dsl.component(packages_to_install=["kfp==2.17.0", "kubelab-utils==0.1.0", "kfp-kubernetes==0.0.1"],
               pip_index_urls=[INDEX])
def uses_private_packages() -> str:
    import kfp_kubernetes_probe
    import kubelab_utils_probe
    return kubelab_utils_probe.VERSION + "+" + kfp_kubernetes_probe.VERSION

@dsl.pipeline(name="private-index")
def pipeline() -> str:
    return uses_private_packages().output

compiler.Compiler().compile(pipeline, OUT)
"""


@pytest.mark.skipif(not KFP_PYTHON.exists(), reason="needs .venv-kfp (make test-deps)")
def test_a_kfp_compiled_component_gets_its_packages_from_its_index(
    simple_index: str, tmp_path: Path
) -> None:
    out = tmp_path / "kfp.yaml"
    script = tmp_path / "kfp_pipeline.py"  # kfp reads the component's source from its file
    script.write_text(
        KFP_PIPELINE.replace("INDEX", repr(simple_index)).replace("OUT", repr(str(out)))
    )
    done = subprocess.run(
        [str(KFP_PYTHON), str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    from kubelab.pipelines.local.ir import load_ir_file

    store = RunStore(tmp_path / "runs.db")
    result = run_pipeline(load_ir_file(out), store=store, pipeline_root=tmp_path / "out")
    assert result.succeeded, result.error
    assert result.outputs["Output"] == "0.1.0+0.0.1"
    log = Path(store.task_info(result.run_id, "uses-private-packages")["log_path"]).read_text()
    assert "not installing 'kfp==2.17.0'" in log
    assert f"--index-url {simple_index}" in log
