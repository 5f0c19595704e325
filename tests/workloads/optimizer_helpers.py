"""Shared pieces of the tuning tests: Katib's API types as a strict JSON Schema, a Katib
Experiment with a batch Job trial, and a check that a Job converts to Kubernetes' V1Job."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema

# Katib's API types as OpenAPI, kept with the CRDs of the test API server.
OPENAPI = Path(__file__).resolve().parents[1] / "k8s" / "crds" / "katib_v1beta1_openapi.json"


def _strict(schema: Any) -> Any:
    """Objects with declared properties refuse unknown keys (typos fail the test)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        if "$ref" in out:
            out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/definitions/")
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def experiment_validator() -> jsonschema.Draft7Validator:
    components = json.loads(OPENAPI.read_text())["components"]["schemas"]
    definitions = {name: _strict(schema) for name, schema in components.items()}
    # trialSpec and runSpec are free-form Kubernetes objects.
    definitions["io.k8s.apimachinery.pkg.apis.meta.v1.unstructured.Unstructured"] = {
        "type": "object"
    }
    schema = {"$ref": "#/definitions/v1beta1.Experiment", "definitions": definitions}
    return jsonschema.Draft7Validator(schema)


def assert_valid_experiment(experiment: dict[str, Any]) -> None:
    errors = sorted(experiment_validator().iter_errors(experiment), key=str)
    assert not errors, [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors]


def assert_converts_to_v1job(job: dict[str, Any]) -> None:
    """What Katib's webhook checks of a Job trial: it converts to a batch/v1 Job without
    losing a field (the kubernetes client's models validate types as they load)."""
    from kubernetes.client import ApiClient

    api = ApiClient()
    model = api.deserialize(json.dumps(job), "V1Job", "application/json")
    assert api.sanitize_for_serialization(model) == job


# The command of TRAIN_SCRIPT's trials in `job_experiment`.
TRAIN_COMMAND = [
    "python3",
    "train.py",
    "--lr=${trialParameters.learningRate}",
    "--optimizer=${trialParameters.optimizer}",
]


def job_experiment(
    name: str = "job-exp", *, command: list[str] = TRAIN_COMMAND, **spec: Any
) -> dict[str, Any]:
    experiment = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": "3"}],
            },
            "maxTrialCount": 4,
            "parallelTrialCount": 2,
            "parameters": [
                {
                    "name": "lr",
                    "parameterType": "double",
                    "feasibleSpace": {"min": "0.01", "max": "0.05"},
                },
                {
                    "name": "optimizer",
                    "parameterType": "categorical",
                    "feasibleSpace": {"list": ["sgd", "adam"]},
                },
            ],
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "trialParameters": [
                    {"name": "learningRate", "reference": "lr"},
                    {"name": "optimizer", "reference": "optimizer"},
                ],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": "training-container",
                                        "image": "docker.io/kubeflowkatib/pytorch-mnist-cpu:latest",
                                        "command": command,
                                    }
                                ],
                                "restartPolicy": "Never",
                            }
                        }
                    },
                },
            },
        },
    }
    experiment["spec"].update(copy.deepcopy(spec))
    return experiment


TRAIN_SCRIPT = """\
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--optimizer")
args = parser.parse_args()
for epoch in range(1, 4):
    loss = (args.lr - 0.02) ** 2 * 100 / epoch + (0.1 if args.optimizer == "sgd" else 0.0)
    print(f"epoch {epoch}: loss={loss:.6f} accuracy={1 - loss:.4f}")
"""
