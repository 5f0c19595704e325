"""The Open Inference Protocol codec on its own: tensors in and out, JSON and binary."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from kubelab.workloads.serving.protocol import (
    InferRequest,
    InvalidInput,
    decode_infer_request,
    decode_predict_request,
    encode_infer_response,
    encode_predict_response,
)


def decode(body: dict, headers: dict | None = None) -> InferRequest:
    return decode_infer_request("m", json.dumps(body).encode(), headers or {})


def test_datatypes_and_shapes_nested_or_flat() -> None:
    request = decode(
        {
            "id": 7,
            "parameters": {"content_type": "np"},
            "inputs": [
                {"name": "a", "shape": [2, 2], "datatype": "INT8", "data": [[1, 2], [3, 4]]},
                {"name": "b", "shape": [3], "datatype": "BOOL", "data": [True, False, True]},
                {"name": "c", "shape": [2, 1], "datatype": "BYTES", "data": ["hé", "x"]},
                {"name": "d", "shape": [1, 2], "datatype": "FP16", "data": [1.5, 2]},
            ],
        }
    )
    a, b, c, d = (i.as_numpy() for i in request.inputs)
    assert a.dtype == np.int8 and a.tolist() == [[1, 2], [3, 4]]
    assert b.dtype == np.bool_ and b.tolist() == [True, False, True]
    assert c.shape == (2, 1) and c[0, 0] == "hé".encode()
    assert d.dtype == np.float16 and d.tolist() == [[1.5, 2.0]]
    assert request.id == "7" and request.get_input_by_name("b") is request.inputs[1]


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"datatype": "UINT8", "data": [1, 256]}, "out of range for UINT8"),
        ({"datatype": "BOOL", "data": [1, 0]}, "datatype BOOL does not match"),
        ({"datatype": "BYTES", "data": [1, 2]}, "datatype BYTES does not match"),
        ({"datatype": "FP32", "data": 3}, "'data' must be a list"),
        ({"datatype": "FP32", "data": [1, 2], "shape": [3]}, "shape [3] needs 3 values"),
        ({"datatype": "FP32", "data": [1, 2], "shape": "2"}, "'shape' must be a list"),
    ],
)
def test_bad_tensors(tensor: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=None) as error:
        decode({"inputs": [{"name": "t", "shape": [2], **tensor}]})
    assert message in error.value.message and "input 't'" in error.value.message
    assert error.value.status == 400


def test_binary_inputs_and_outputs_round_trip() -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    words = [b"ab", b"xyz"]
    raw_words = b"".join(struct.pack("<I", len(w)) + w for w in words)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                },
                {
                    "name": "w",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw_words)},
                },
            ],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}, {"name": "z"}],
        }
    ).encode()
    body = header + x.tobytes() + raw_words
    request = decode_infer_request("m", body, {"inference-header-content-length": str(len(header))})
    assert request.inputs[0].as_numpy().tolist() == x.tolist()
    assert request.inputs[1].as_numpy().tolist() == words
    y = np.array([1.5, 2.5], dtype=np.float64)
    answer, headers = encode_infer_response(
        request, [("z", np.array([b"ok"], dtype=object)), ("y", y)]
    )
    length = int(headers["Inference-Header-Content-Length"])
    meta = json.loads(answer[:length])
    assert [o["name"] for o in meta["outputs"]] == ["y", "z"]  # the order asked for
    assert meta["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert np.frombuffer(answer[length:], dtype=np.float64).tolist() == [1.5, 2.5]
    assert meta["outputs"][1]["data"] == ["ok"]


def test_binary_sizes_are_checked() -> None:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 16},
                }
            ]
        }
    ).encode()
    with pytest.raises(InvalidInput, match="runs past the body"):
        decode_infer_request(
            "m", header + b"\0" * 8, {"inference-header-content-length": str(len(header))}
        )
    with pytest.raises(InvalidInput, match="is 999 but the body has"):
        decode_infer_request("m", header, {"inference-header-content-length": "999"})


def test_request_level_binary_output_and_v1() -> None:
    request = decode(
        {
            "parameters": {"binary_data_output": True},
            "inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1]}],
        }
    )
    body, headers = encode_infer_response(request, [("output-0", np.array([3], dtype=np.int64))])
    assert headers["Content-Type"] == "application/octet-stream"
    assert body.endswith(struct.pack("<q", 3))
    assert decode_predict_request(b'{"instances": [[1, 2]]}') == {"instances": [[1, 2]]}
    assert json.loads(encode_predict_response(np.array([0, 1]))) == {"predictions": [0, 1]}
