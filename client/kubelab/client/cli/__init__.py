"""The `kubelab` command line, a thin layer over `kubelab.client.Client`."""
