"""The `kubelab` command line."""
