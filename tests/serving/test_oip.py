"""The local model server through real clients: tritonclient (Open Inference Protocol v2
over HTTP, binary tensors by default) and plain HTTP for KServe v1 and bad input."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from .conftest import IRIS_ROWS, train_iris


def host(url: str) -> str:
    return url.removeprefix("http://")


def post(
    url: str, body: bytes | str, content_type: str | None = "application/json"
) -> tuple[int, Any]:
    data = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text.startswith(b"{") else text.decode()
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_health_and_metadata_through_tritonclient(iris_server: str) -> None:
    client = triton.InferenceServerClient(host(iris_server))
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert not client.is_model_ready("nope")
    server = client.get_server_metadata()
    assert server["name"] == "kubelab" and "binary_tensor_data" in server["extensions"]
    metadata = client.get_model_metadata("iris")
    assert metadata["name"] == "iris"
    assert metadata["platform"] == "sklearn"
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    assert metadata["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]
    with pytest.raises(InferenceServerException) as missing:
        client.get_model_metadata("nope")
    assert missing.value.status() == "404"
    assert "Model with name nope does not exist" in missing.value.message()


def test_infer_fp32_2x4_binary_and_json(iris_server: str) -> None:
    client = triton.InferenceServerClient(host(iris_server))
    x = np.array(IRIS_ROWS, dtype=np.float32)
    expected = train_iris().predict(x)
    assert expected.tolist() == [0, 1]

    binary = triton.InferInput("input-0", [2, 4], "FP32")
    binary.set_data_from_numpy(x)  # binary tensor extension, outputs in binary too
    result = client.infer("iris", [binary], request_id="req-1")
    assert result.as_numpy("output-0").tolist() == expected.tolist()
    response = result.get_response()
    assert response["id"] == "req-1" and response["model_name"] == "iris"
    assert response["outputs"][0]["datatype"] == "INT64"

    as_json = triton.InferInput("input-0", [2, 4], "FP32")
    as_json.set_data_from_numpy(x, binary_data=False)
    wanted = triton.InferRequestedOutput("output-0", binary_data=False)
    result = client.infer("iris", [as_json], outputs=[wanted])
    assert result.get_response()["outputs"] == [
        {"name": "output-0", "shape": [2], "datatype": "INT64", "parameters": None, "data": [0, 1]}
    ]


def test_infer_json_matches_kserve_shape(iris_server: str) -> None:
    body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}
    status, answer = post(f"{iris_server}/v2/models/iris/infer", json.dumps(body))
    assert status == 200
    assert set(answer) == {"model_name", "model_version", "id", "parameters", "outputs"}
    assert answer["outputs"][0]["data"] == [0, 1]
    # the optional versions path, and a flat data list
    flat = {"inputs": [{**body["inputs"][0], "data": [v for row in IRIS_ROWS for v in row]}]}
    status, answer = post(f"{iris_server}/v2/models/iris/versions/1/infer", json.dumps(flat))
    assert status == 200 and answer["model_version"] == "1"
    assert get(f"{iris_server}/v2/models/iris/versions/1/ready") == (
        200,
        {"name": "iris", "ready": True},
    )


def test_v1_predict(iris_server: str) -> None:
    status, answer = post(
        f"{iris_server}/v1/models/iris:predict", json.dumps({"instances": IRIS_ROWS})
    )
    assert (status, answer) == (200, {"predictions": [0, 1]})
    assert get(f"{iris_server}/v1/models") == (200, {"models": ["iris"]})
    assert get(f"{iris_server}/v1/models/iris") == (200, {"name": "iris", "ready": True})
    assert get(f"{iris_server}/") == (200, {"status": "alive"})


GOOD = {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"inputs": [', "request body is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("{}", "'inputs' is missing"),
        (
            {"inputs": [{**GOOD, "datatype": "FP32", "data": [["a", "b", "c", "d"]] * 2}]},
            "datatype FP32 does not match",
        ),
        (
            {"inputs": [{**GOOD, "datatype": "INT32"}]},
            "datatype INT32 does not match the data (e.g. 5.1)",
        ),
        ({"inputs": [{**GOOD, "datatype": "FLOAT"}]}, "unknown datatype 'FLOAT'"),
        ({"inputs": [{**GOOD, "shape": [2, 3]}]}, "shape [2, 3] needs 6 values but 'data' has 8"),
        (
            {"inputs": [{**GOOD, "shape": [2, -4]}]},
            "'shape' must be a list of non-negative integers",
        ),
        (
            {"inputs": [{k: v for k, v in GOOD.items() if k != "data"}]},
            "input 'x': 'data' is missing",
        ),
        (
            {"inputs": [{k: v for k, v in GOOD.items() if k != "datatype"}]},
            "input 'x': 'datatype' is missing",
        ),
        ({"inputs": [{**GOOD, "data": [[1, 2, 3, 4], [5, 6]]}]}, "input 'x'"),
        (
            {"inputs": [{**GOOD, "shape": [2, 3], "data": [[1, 2, 3], [4, 5, 6]]}]},
            "X has 3 features",
        ),
        ({"inputs": [GOOD], "outputs": [{"name": "nope"}]}, "unknown output 'nope'"),
    ],
)
def test_bad_input_is_a_400_naming_what_is_wrong(iris_server: str, body: Any, message: str) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    status, answer = post(f"{iris_server}/v2/models/iris/infer", text)
    assert status == 400, answer
    assert message in answer["error"]


def test_bad_input_through_tritonclient_and_v1(iris_server: str) -> None:
    client = triton.InferenceServerClient(host(iris_server))
    narrow = triton.InferInput("input-0", [2, 3], "FP32")
    narrow.set_data_from_numpy(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(InferenceServerException) as error:
        client.infer("iris", [narrow])
    assert error.value.status() == "400"
    assert "X has 3 features, but LogisticRegression is expecting 4" in error.value.message()
    status, answer = post(f"{iris_server}/v1/models/iris:predict", '{"rows": []}')
    assert status == 400 and "'instances' is missing" in answer["error"]
    status, answer = post(f"{iris_server}/v1/models/iris:predict", "not json", content_type=None)
    assert status == 400 and "not valid JSON" in answer["error"]
    status, answer = post(f"{iris_server}/v2/models/nope/infer", json.dumps({"inputs": [GOOD]}))
    assert status == 404 and answer == {"error": "Model with name nope does not exist."}


def test_metrics_count_requests_and_latency(iris_server: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def counts() -> dict[tuple[str, str], float]:
        _, text = get(f"{iris_server}/metrics")
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "kubelab_inference_requests_total":
                    found[(sample.labels["protocol"], sample.labels["code"])] = sample.value
                if sample.name == "request_predict_seconds_count":
                    found[("predict", "count")] = sample.value
        return found

    before = counts()
    body = json.dumps({"inputs": [GOOD]})
    for _ in range(3):
        assert post(f"{iris_server}/v2/models/iris/infer", body)[0] == 200
    assert post(f"{iris_server}/v2/models/iris/infer", "{}")[0] == 400
    after = counts()
    assert after[("v2", "200")] - before.get(("v2", "200"), 0) == 3
    assert after[("v2", "400")] - before.get(("v2", "400"), 0) == 1
    assert after[("predict", "count")] - before.get(("predict", "count"), 0) == 3


def test_status_summary_and_example_request(iris_server: str) -> None:
    from kubelab.workloads.serving.status import example_request, summarize_metrics

    _, metadata = get(f"{iris_server}/v2/models/iris")
    example = example_request(metadata)
    assert example == {
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [0.0] * 4}]
    }
    status, answer = post(f"{iris_server}/v2/models/iris/infer", json.dumps(example))
    assert status == 200 and answer["outputs"][0]["shape"] == [1]
    post(f"{iris_server}/v2/models/iris/infer", "{}")
    _, text = get(f"{iris_server}/metrics")
    summary = summarize_metrics(text, "iris")
    assert summary["requests"] >= 2 and summary["errors"] >= 1
    assert summary["by_code"]["200"] >= 1 and summary["by_code"]["400"] >= 1
    latency = summary["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] and latency["mean"] > 0
    assert summarize_metrics(text, "other") == {
        "requests": 0,
        "errors": 0,
        "by_code": {},
        "latency_ms": None,
    }
