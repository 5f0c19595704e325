"""`Client`: one object for pipeline runs and jobs, on this machine or a cluster.

Method names follow `kfp.Client` where it has them (`create_run_from_pipeline_package`,
`create_run_from_pipeline_func`, `get_run`, `list_runs`, `terminate_run`,
`wait_for_run_completion`); jobs follow the Kubeflow SDK's clients (`get_job`,
`list_jobs`, `delete_job`; `kubelab.client.jobs`). The CLI and the jupyter-server
handlers are thin layers on top of this class, so all three behave the same.

    from kubelab.client import Client
    client = Client()                                   # the embedded engine
    run = client.create_run_from_pipeline_package("demo.ipynb", {"n_estimators": 50})
    client.wait_for_run_completion(run.run_id)["state"]  # 'succeeded'

Runs are grouped into experiments (`experiment_name=`, else one per notebook or
pipeline file, as KFP's experiments); `compare_runs`, `artifact_lineage`,
`reproduce_run` and `export_to_mlflow` answer what changed between runs, where an
artifact came from, and whether a run can be reproduced (`kubelab.client.tracking`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelab.client.backends import BACKENDS
from kubelab.client.backends.base import JobBackend, RunBackend
from kubelab.client.experiments import check_experiment_name
from kubelab.client.jobs import JobsMixin
from kubelab.client.logs import stream
from kubelab.client.provenance import default_experiment
from kubelab.client.sources import PipelineSource, load_pipeline
from kubelab.client.store import RunStore, kubelab_home
from kubelab.client.tracking import TrackingMixin
from kubelab.pipelines.errors import KubelabError, NotFoundError

# Where the CLI and Python users find a Kubeflow Pipelines server (the jupyter server
# has its own settings, `c.KubelabApp.kfp_endpoint`, `kfp_token_file`, ...).
KFP_ENDPOINT_ENV = "KUBELAB_KFP_ENDPOINT"
KFP_TOKEN_FILE_ENV = "KUBELAB_KFP_TOKEN_FILE"  # a file: tokens never sit in env vars
KFP_NAMESPACE_ENV = "KUBELAB_KFP_NAMESPACE"
KFP_EXPERIMENT_ENV = "KUBELAB_KFP_EXPERIMENT"
KFP_UI_URL_ENV = "KUBELAB_KFP_UI_URL"


class RunList(list[dict[str, Any]]):
    """Runs of several backends, newest first; `unavailable` maps a backend that could
    not be read to why (its runs recorded here are listed with their last known state)."""

    def __init__(
        self, runs: Iterable[dict[str, Any]] = (), unavailable: dict[str, str] | None = None
    ):
        super().__init__(runs)
        self.unavailable = unavailable or {}


@dataclass
class RunPipelineResult:
    """A started run, as `kfp.Client.create_run_from_pipeline_*` returns it."""

    client: Client
    run_id: str
    backend: str

    def wait_for_run_completion(self, timeout: float | None = None) -> dict[str, Any]:
        return self.client.wait_for_run_completion(self.run_id, timeout)

    def __repr__(self) -> str:
        return f"RunPipelineResult(run_id={self.run_id!r}, backend={self.backend!r})"


class Client(JobsMixin, TrackingMixin):
    """Runs and jobs through one backend by default ("local" or "kubernetes").

    `home` holds the run store and job files (default `$KUBELAB_HOME` or ~/.kubelab);
    `root` is the user's root, to which job file paths are confined (default: the
    current directory); `pipeline_root` is where local run artifacts go (default
    `./local_outputs`, as kfp.local). The Kubeflow Pipelines server comes from
    `kfp_endpoint` (`$KUBELAB_KFP_ENDPOINT`), with `kfp_token_file` (default: the
    projected ServiceAccount token), `kfp_namespace` (multi-user mode; default
    `namespace`, else the pod's), `kfp_experiment` (default: one per pipeline) and
    `kfp_ui_url` (for links), each also from `$KUBELAB_KFP_<NAME>`. Kubernetes jobs
    go to `namespace` (default: the pod's or the kubeconfig context's) as the
    notebook's ServiceAccount, or as the identity of `kubeconfig` (default
    `$KUBECONFIG`) and its `kube_context`. `profile` is the spawner's profile of this
    server: its GPU limit holds for jobs on either backend.
    """

    def __init__(
        self,
        backend: str | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        root: str | os.PathLike[str] | None = None,
        pipeline_root: str | os.PathLike[str] | None = None,
        kfp_endpoint: str | None = None,
        kfp_token_file: str | os.PathLike[str] | None = None,
        kfp_namespace: str | None = None,
        kfp_experiment: str | None = None,
        kfp_ui_url: str | None = None,
        namespace: str | None = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        kube_context: str | None = None,
        profile: dict[str, Any] | None = None,
        strict_resources: bool = False,
        store: RunStore | None = None,
    ) -> None:
        self.default_backend = self._check_backend(backend or "local")
        self.home = Path(home) if home is not None else kubelab_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.store = store or RunStore(self.home / "kubelab.db")
        self.root = Path(root or os.getcwd()).resolve()
        self.pipeline_root = pipeline_root
        # Not given (None): the environment's; the jupyter server gives its settings.
        self.kfp_endpoint = _setting(kfp_endpoint, KFP_ENDPOINT_ENV)
        self.kfp_token_file = _setting(kfp_token_file, KFP_TOKEN_FILE_ENV)
        self.kfp_namespace = _setting(kfp_namespace, KFP_NAMESPACE_ENV) or namespace or ""
        self.kfp_experiment = _setting(kfp_experiment, KFP_EXPERIMENT_ENV)
        self.kfp_ui_url = _setting(kfp_ui_url, KFP_UI_URL_ENV)
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.kube_context = kube_context
        self.profile = profile
        self.strict_resources = strict_resources
        self._backends: dict[str, Any] = {}

    # -- backends -----------------------------------------------------------------------

    @staticmethod
    def _check_backend(name: Any) -> str:
        if name not in BACKENDS:
            raise KubelabError(
                f"unknown backend {name!r}; backends: {', '.join(BACKENDS)}", backend=name
            )
        return str(name)

    def _cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._backends:
            self._backends[key] = make()
        return self._backends[key]

    def local(self) -> Any:
        """The `LocalBackend` (runs and jobs on this machine)."""
        from kubelab.client.backends.local import LocalBackend

        return self._cached(
            "local",
            lambda: LocalBackend(
                self.store,
                home=self.home,
                root=self.root,
                pipeline_root=self.pipeline_root,
                strict_resources=self.strict_resources,
                profile=self.profile,
            ),
        )

    def run_backend(self, name: str | None = None) -> RunBackend:
        """Where pipeline runs go for backend `name` (the default one when None)."""
        name = self._check_backend(name or self.default_backend)
        if name == "local":
            return self.local()
        if not self.kfp_endpoint:
            raise KubelabError(
                "the kubernetes backend is not configured for pipelines: set "
                "c.KubelabApp.kfp_endpoint (jupyter server) or $KUBELAB_KFP_ENDPOINT "
                "(CLI, Python) to a Kubeflow Pipelines API URL",
                backend=name,
            )
        from kubelab.client.backends.kubeflow import KubeflowPipelinesBackend

        return self._cached(
            "kfp",
            lambda: KubeflowPipelinesBackend(
                self.kfp_endpoint,
                store=self.store,
                token_file=str(self.kfp_token_file) or None,  # read on every request
                namespace=self.kfp_namespace or None,
                experiment=self.kfp_experiment or None,
                ui_url=self.kfp_ui_url or None,
            ),
        )

    def backends_status(self) -> list[dict[str, Any]]:
        """Each backend and whether it can be used now (configured and reachable), with
        the reason when not; probed with a short timeout, cached for a few seconds."""
        from kubelab.client.backends.reachability import BackendsStatus

        status = self._cached(
            "status", lambda: BackendsStatus(self.kfp_endpoint, self.kfp_token_file)
        )
        return status()

    def job_backend(self, name: str | None = None) -> JobBackend:
        """Where jobs go for backend `name` (the default one when None)."""
        name = self._check_backend(name or self.default_backend)
        if name == "local":
            return self.local()
        from kubelab.client.backends.kubernetes import KubernetesBackend

        return self._cached(
            "kubernetes",
            lambda: KubernetesBackend(
                self.store,
                namespace=self.namespace,
                profile=self.profile,
                config_file=self.kubeconfig,
                context=self.kube_context,
            ),
        )

    # -- runs ---------------------------------------------------------------------------

    def create_run(
        self,
        pipeline: PipelineSource | dict[str, Any],
        arguments: dict[str, Any] | None = None,
        *,
        run_name: str | None = None,
        enable_caching: bool = True,
        backend: str | None = None,
        experiment_name: str | None = None,
        origin: dict[str, Any] | None = None,
        **engine_options: Any,
    ) -> str:
        """Start a run of a loaded pipeline (or its IR); returns the run id at once.

        The run joins `experiment_name` (created if new; default: one experiment per
        source file). `engine_options` go to the local engine (`on_event`,
        `parallelism`, `task_timeout`, `pipeline_root`). `origin` says how the run came
        about, for its label (`{"rerun_of": id, ...}`); by default, the arguments given.
        """
        from kubelab.pipelines.local.ir import check_parameter_names, root_artifacts
        from kubelab.pipelines.local.ir import root_parameters as declared

        source = pipeline if isinstance(pipeline, PipelineSource) else PipelineSource(pipeline)
        if not isinstance(source.ir, dict) or "root" not in source.ir:
            raise KubelabError("not a compiled pipeline: the IR has no 'root' DAG")
        if arguments is not None and not isinstance(arguments, dict):
            raise KubelabError("'parameters' must be an object of name: value")
        arguments = dict(arguments or {})
        check_parameter_names(arguments, [*declared(source.ir), *root_artifacts(source.ir)])
        if experiment_name is not None:
            engine_options["experiment"] = check_experiment_name(experiment_name)
        self.store.experiments.refuse_archived(
            engine_options.get("experiment") or default_experiment(source.path)
        )
        owner = self.run_backend(backend)
        run_id = owner.start_run(
            source.ir,
            arguments,
            source=source.path,
            task_metadata=source.task_metadata,
            run_name=run_name,
            enable_caching=enable_caching,
            preload=source.preload,
            platform_spec=source.platform_spec,
            **engine_options,
        )
        if origin is None:
            origin = {"arguments": arguments} if arguments else {}
        return self._record_origin(owner, run_id, origin)

    def _record_origin(self, owner: RunBackend, run_id: str, origin: dict[str, Any]) -> str:
        """Note how a run on this machine came about: its label says it
        (`#7 · n_estimators=50`, `#8 · re-run of #7`, `#9 · from train_forest`)."""
        if origin and owner.name == "local":
            self.store.update_run(run_id, origin=origin)
        return run_id

    def create_run_from_pipeline_package(
        self,
        pipeline_file: str | os.PathLike[str],
        arguments: dict[str, Any] | None = None,
        run_name: str | None = None,
        *,
        enable_caching: bool = True,
        backend: str | None = None,
        function: str | None = None,
        experiment_name: str | None = None,
        **engine_options: Any,
    ) -> RunPipelineResult:
        """Run a compiled pipeline (.yaml), a pipeline file (.py) or a tagged notebook."""
        source = load_pipeline(pipeline_file, function)
        run_id = self.create_run(
            source,
            arguments,
            run_name=run_name,
            enable_caching=enable_caching,
            backend=backend,
            experiment_name=experiment_name,
            **engine_options,
        )
        return RunPipelineResult(self, run_id, self.run_backend(backend).name)

    def create_run_from_pipeline_func(
        self,
        pipeline_func: Any,
        arguments: dict[str, Any] | None = None,
        run_name: str | None = None,
        *,
        enable_caching: bool = True,
        backend: str | None = None,
        experiment_name: str | None = None,
        **engine_options: Any,
    ) -> RunPipelineResult:
        """Run a `@dsl.pipeline` function (or a component) without writing a file."""
        from kubelab.pipelines import compiler

        spec, platform = compiler.build_specs(pipeline_func)
        run_id = self.create_run(
            PipelineSource(spec, platform_spec=platform),
            arguments,
            run_name=run_name,
            enable_caching=enable_caching,
            backend=backend,
            experiment_name=experiment_name,
            **engine_options,
        )
        return RunPipelineResult(self, run_id, self.run_backend(backend).name)

    def _run_owner(self, run_id: str, backend: str | None) -> tuple[RunBackend, dict[str, Any]]:
        """The backend that holds `run_id` and the run, read from it: this machine's store
        first (a unique prefix of an id recorded here is enough), then Kubeflow Pipelines."""
        try:
            info = self.store.run_info(run_id)
        except NotFoundError:
            if backend is None and not self.kfp_endpoint:
                raise
            chosen = self.run_backend(backend or "kubernetes")
            return chosen, chosen.get_run(run_id)
        if info["kind"] != "pipeline":
            raise NotFoundError(f"no run {run_id!r} ({info['id']} is a {info['kind']} job)")
        chosen = self.run_backend(backend or info["backend"])
        return chosen, chosen.get_run(info["id"])

    def get_run(self, run_id: str, *, backend: str | None = None) -> dict[str, Any]:
        """The run JSON (a unique prefix of a local id is enough)."""
        return self._run_owner(run_id, backend)[1]

    def list_runs(
        self,
        limit: int = 100,
        *,
        backend: str | None = None,
        experiment: int | str | None = None,
        include_archived: bool = False,
    ) -> RunList:
        """Runs of `backend`, or of every configured backend when None, newest first.

        Each run says its `backend`. Kubeflow Pipelines runs are the namespace's (not
        only those started here); when KFP cannot be read, the runs started here are
        listed with their last known state and `RunList.unavailable` says why.
        `experiment` (id or name) keeps that local experiment's runs; runs of archived
        experiments are left out unless `include_archived` (as KFP's archive does).
        """
        limit = max(1, min(int(limit), 1000))
        if experiment is not None:
            if backend not in (None, "local"):
                raise KubelabError(
                    "experiments are listed for local runs; on Kubeflow Pipelines use its UI",
                    backend=backend,
                )
            backend = "local"
        if backend is not None and self.run_backend(backend).name != "local":
            return RunList(self.run_backend(backend).list_runs(limit))
        runs = self.store.list_runs(
            limit, backend="local", experiment=experiment, include_archived=include_archived
        )
        if backend is not None:
            return RunList(runs)
        unavailable: dict[str, str] = {}
        if self.kfp_endpoint:
            try:
                runs += self.run_backend("kubernetes").list_runs(limit)
            except KubelabError as error:
                unavailable["kubernetes"] = error.message
                runs += self.store.list_runs(limit, backend="kubernetes")
        runs.sort(key=lambda r: r.get("created_at") or "", reverse=True)
        return RunList(runs[:limit], unavailable)

    def logs(
        self, run_id: str, step: str, offset: int = 0, *, backend: str | None = None
    ) -> dict[str, Any]:
        """`{text, offset, complete, state}`: a step's log from byte `offset`."""
        owner, run = self._run_owner(run_id, backend)
        return owner.logs(run["id"], step, offset)

    def stream_logs(
        self,
        run_id: str,
        step: str,
        *,
        follow_until_done: bool = True,
        poll: float = 0.3,
        backend: str | None = None,
    ) -> Iterator[str]:
        """A step's log text as it is written (until the step ends, or what is there now)."""
        owner, run = self._run_owner(run_id, backend)
        return stream(
            lambda o: owner.logs(run["id"], step, o), until_done=follow_until_done, poll=poll
        )

    def cancel(self, run_id: str, *, backend: str | None = None) -> dict[str, Any]:
        """Ask a run to stop (from any process); `ConflictError` when it has ended."""
        owner, run = self._run_owner(run_id, backend)
        return owner.cancel(run["id"])

    terminate_run = cancel  # kfp.Client's name

    def wait_for_run_completion(
        self, run_id: str, timeout: float | None = None, *, backend: str | None = None
    ) -> dict[str, Any]:
        """The run JSON once it has ended; `TimeoutError` after `timeout` seconds."""
        owner, run = self._run_owner(run_id, backend)
        return owner.wait(run["id"], timeout)

    def _source_again(self, run: dict[str, Any], source: str | None) -> PipelineSource:
        path = source or run.get("source")
        if not path:
            raise KubelabError(
                f"run {run['id']} has no source file to compile again", run=run["id"]
            )
        return load_pipeline(path)

    def rerun(self, run_id: str, *, source: str | None = None) -> str:
        """A new run of the same source with the same parameters (minus any the source
        no longer declares); returns its id."""
        from kubelab.pipelines.local.ir import root_parameters

        owner, run = self._run_owner(run_id, None)
        pipeline = self._source_again(run, source)
        declared = root_parameters(pipeline.ir)
        params = {k: v for k, v in run["parameters"].items() if k in declared}
        return self.create_run(
            pipeline,
            params,
            run_name=run.get("name"),
            backend=owner.name,
            experiment_name=run.get("experiment"),
            origin={"rerun_of": run["id"], "rerun_of_number": run.get("number")},
        )

    def run_from(self, run_id: str, step: str, *, source: str | None = None) -> str:
        """A new run that re-executes `step` and what depends on it, with the upstream
        steps' outputs from the cache; returns its id."""
        owner, run = self._run_owner(run_id, None)
        pipeline = self._source_again(run, source)
        new_id = owner.run_from(
            run["id"],
            step,
            pipeline.ir,
            task_metadata=pipeline.task_metadata,
            source=pipeline.path,
        )
        # The notebook step's name when `step` is a task name ("train-forest").
        named = next(
            (
                m["step"]
                for t, m in (pipeline.task_metadata or {}).items()
                if t == step and "step" in m
            ),
            step,
        )
        origin = {"from_run": run["id"], "from_run_number": run.get("number"), "from_step": named}
        return self._record_origin(owner, new_id, origin)


def _setting(value: str | os.PathLike[str] | None, env: str) -> str:
    """An explicit setting, else the environment's (None means "not given")."""
    return os.fspath(value) if value is not None else os.environ.get(env, "")
