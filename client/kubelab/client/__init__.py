"""kubelab.client: one client for runs and jobs, their backends, the run store and the CLI.

The SQLite store (`kubelab.client.store`) sits below the pipelines engine and the
workloads' local runners, which write it; `Client` and the CLI sit above them.
Submodules are imported on demand so that `import kubelab.client` stays cheap.
"""
