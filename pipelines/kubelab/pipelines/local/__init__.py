"""Run pipelines and components on this machine (the kfp.local surface)."""
