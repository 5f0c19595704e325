"""JupyterHub spawners for kubelab: Kubernetes (KubeSpawner) and local processes."""
