"""The Open Inference Protocol (v2 REST, with its binary tensor extension) and KServe v1,
as bytes in and bytes out, with no HTTP server attached.

Payload shapes, paths and error bodies follow KServe's Python model server
(`kserve.protocol`), so any OIP client (tritonclient, KServe's `InferenceRESTClient`,
curl) talks to kubelab's server as it does to KServe's. Where KServe answers bad input
with a 500 or FastAPI's 422, this module raises `InvalidInput` (a 400 whose
`{"error": ...}` names the input and what is wrong with it).
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# OIP datatype -> numpy dtype, and the kinds of JSON values each accepts.
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
_ACCEPTS = {"BOOL": "b", "BYTES": "USO"}  # numpy kinds of the parsed JSON data
_ACCEPTS.update({t: "bui" for t in DATATYPES if t.startswith(("INT", "UINT"))})
_ACCEPTS.update({t: "buif" for t in DATATYPES if t.startswith("FP")})
HEADER_LENGTH = "inference-header-content-length"  # the binary extension's header


class ProtocolError(Exception):
    """An answer other than 200, with KServe's `{"error": message}` body."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> bytes:
        return dumps({"error": self.message})


class InvalidInput(ProtocolError):
    status = 400


class ModelNotFound(ProtocolError):
    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"Model with name {name} does not exist.")


class ModelNotReady(ProtocolError):
    status = 503

    def __init__(self, name: str, detail: str | None = None) -> None:
        super().__init__(f"Model with name {name} is not ready." + (f" {detail}" if detail else ""))


class ServerNotReady(ProtocolError):
    status = 503

    def __init__(self, detail: str | None = None) -> None:
        super().__init__("Server is not ready." + (f" {detail}" if detail else ""))


class NotSupported(ProtocolError):
    status = 501


def datatype_of(array: np.ndarray) -> str:
    """The OIP datatype of a numpy array (strings and objects are BYTES)."""
    if array.dtype.kind in "USO":
        return "BYTES"
    for name, dtype in DATATYPES.items():
        if dtype == array.dtype:
            return name
    raise InvalidInput(f"cannot send numpy dtype {array.dtype} as an inference output")


# -- tensors ---------------------------------------------------------------------------


@dataclass
class InferInput:
    """One input tensor, with the attributes KServe's `InferInput` has."""

    name: str
    shape: list[int]
    datatype: str
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)

    def as_numpy(self) -> np.ndarray:
        return self.data


@dataclass
class RequestedOutput:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def binary_data(self) -> bool | None:
        value = self.parameters.get("binary_data")
        return None if value is None else bool(value)


@dataclass
class InferRequest:
    """A decoded v2 inference request, shaped as KServe's `InferRequest` for custom models."""

    model_name: str
    inputs: list[InferInput]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    request_outputs: list[RequestedOutput] | None = None
    model_version: str | None = None

    def get_input_by_name(self, name: str) -> InferInput | None:
        return next((i for i in self.inputs if i.name == name), None)

    @property
    def use_binary_outputs(self) -> bool:
        return bool(self.parameters.get("binary_data_output", False))


def _shape(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise InvalidInput(
            f"{where}: 'shape' must be a list of non-negative integers, got {value!r}"
        )
    return value


def _to_array(data: Any, datatype: str, shape: list[int], where: str) -> np.ndarray:
    """The JSON `data` (flat or nested, row-major) as an array of `datatype` and `shape`."""
    if not isinstance(data, list):
        raise InvalidInput(f"{where}: 'data' must be a list, got {type(data).__name__}")
    try:
        parsed = np.asarray(data)
    except ValueError as error:  # ragged nesting
        raise InvalidInput(
            f"{where}: 'data' is not a regular (rectangular) array: {error}"
        ) from None
    count = math.prod(shape)
    if parsed.size != count:
        raise InvalidInput(
            f"{where}: shape {shape} needs {count} values but 'data' has {parsed.size}"
        )
    if parsed.size and parsed.dtype.kind not in _ACCEPTS[datatype]:
        sample = parsed.reshape(-1)[0].item()
        raise InvalidInput(
            f"{where}: datatype {datatype} does not match the data (e.g. {sample!r})"
        )
    dtype = DATATYPES[datatype]
    if datatype == "BYTES":
        array = np.empty(parsed.size, dtype=object)
        array[:] = [v.encode() if isinstance(v, str) else v for v in parsed.reshape(-1).tolist()]
        return array.reshape(shape)
    if parsed.dtype.kind in "iu" and dtype.kind in "iu" and parsed.size:
        info = np.iinfo(dtype)
        if parsed.min() < info.min or parsed.max() > info.max:
            raise InvalidInput(f"{where}: a value is out of range for {datatype}")
    return parsed.astype(dtype, copy=False).reshape(shape)


def _from_binary(raw: bytes, datatype: str, shape: list[int], where: str) -> np.ndarray:
    if datatype == "BYTES":
        items, offset = [], 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise InvalidInput(f"{where}: truncated BYTES element in the binary data")
            (length,) = struct.unpack_from("<I", raw, offset)
            offset += 4
            items.append(raw[offset : offset + length])
            offset += length
        array = np.empty(len(items), dtype=object)
        array[:] = items
    else:
        dtype = DATATYPES[datatype]
        if len(raw) % dtype.itemsize:
            raise InvalidInput(f"{where}: {len(raw)} bytes is not a whole number of {datatype}")
        array = np.frombuffer(raw, dtype=dtype)
    if array.size != math.prod(shape):
        raise InvalidInput(
            f"{where}: shape {shape} needs {math.prod(shape)} values but the binary data "
            f"holds {array.size}"
        )
    return array.reshape(shape)


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: 'parameters' must be an object")
    return value


def _json_object(body: bytes, key: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as error:
        raise InvalidInput(f"request body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"request body must be a JSON object with '{key}'")
    return value


def decode_infer_request(model_name: str, body: bytes, headers: dict[str, str]) -> InferRequest:
    """A v2 `POST .../infer` body (JSON, or JSON + binary tensors) as an `InferRequest`.

    `headers` has lower-case names.
    """
    header_length = headers.get(HEADER_LENGTH)
    if header_length is not None:
        try:
            json_length = int(header_length)
        except ValueError:
            raise InvalidInput(
                f"{HEADER_LENGTH} must be an integer, got {header_length!r}"
            ) from None
        if not 0 <= json_length <= len(body):
            raise InvalidInput(
                f"{HEADER_LENGTH} is {json_length} but the body has {len(body)} bytes"
            )
        text, binary = body[:json_length], memoryview(body)[json_length:]
    else:
        text, binary = body, memoryview(b"")
    request = _json_object(text, "inputs")
    raw_inputs = request.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput("'inputs' is missing: give a list of {name, shape, datatype, data}")
    parameters = _parameters(request.get("parameters"), "request")
    inputs, offset = [], 0
    for index, raw in enumerate(raw_inputs):
        where = f"input {index}"
        if not isinstance(raw, dict):
            raise InvalidInput(f"{where} must be an object with name, shape, datatype, data")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{where}: 'name' is missing")
        where = f"input {name!r}"
        for key in ("shape", "datatype"):
            if key not in raw:
                raise InvalidInput(f"{where}: '{key}' is missing")
        shape = _shape(raw["shape"], where)
        datatype = raw["datatype"]
        if datatype not in DATATYPES:
            raise InvalidInput(
                f"{where}: unknown datatype {datatype!r}; datatypes: {', '.join(DATATYPES)}"
            )
        input_parameters = _parameters(raw.get("parameters"), where)
        if "data" in raw:
            array = _to_array(raw["data"], datatype, shape, where)
        elif "binary_data_size" in input_parameters:
            size = input_parameters["binary_data_size"]
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise InvalidInput(f"{where}: binary_data_size {size!r} runs past the body")
            array = _from_binary(bytes(binary[offset : offset + size]), datatype, shape, where)
            offset += size
        else:
            raise InvalidInput(f"{where}: 'data' is missing")
        inputs.append(InferInput(name, shape, datatype, array, input_parameters))
    outputs = None
    if request.get("outputs") is not None:
        if not isinstance(request["outputs"], list):
            raise InvalidInput("'outputs' must be a list of {name}")
        outputs = []
        for raw in request["outputs"]:
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                raise InvalidInput("each requested output must be an object with a 'name'")
            outputs.append(
                RequestedOutput(raw["name"], _parameters(raw.get("parameters"), raw["name"]))
            )
    request_id = request.get("id")
    return InferRequest(
        model_name=model_name,
        inputs=inputs,
        id=str(request_id) if request_id is not None else None,
        parameters=parameters,
        request_outputs=outputs,
    )


def _binary(array: np.ndarray) -> bytes:
    if array.dtype.kind in "USO":
        parts = []
        for item in array.reshape(-1).tolist():
            data = item if isinstance(item, bytes) else str(item).encode()
            parts.append(struct.pack("<I", len(data)) + data)
        return b"".join(parts)
    return np.ascontiguousarray(array).tobytes()


def _json_data(array: np.ndarray) -> list[Any]:
    flat = array.reshape(-1)
    if array.dtype.kind in "SO":
        return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in flat.tolist()]
    return flat.tolist()


def encode_infer_response(
    request: InferRequest, outputs: list[tuple[str, np.ndarray]]
) -> tuple[bytes, dict[str, str]]:
    """The v2 response body and extra headers; tensors in binary when the request asks."""
    by_name = dict(outputs)
    if request.request_outputs:
        wanted = request.request_outputs
        for output in wanted:
            if output.name not in by_name:
                raise InvalidInput(
                    f"unknown output {output.name!r} for model {request.model_name!r}; "
                    f"outputs: {', '.join(by_name)}"
                )
    else:
        wanted = [RequestedOutput(name) for name, _ in outputs]
    default_binary = request.use_binary_outputs
    tensors, raw = [], []
    for output in wanted:
        array = np.asarray(by_name[output.name])
        tensor: dict[str, Any] = {
            "name": output.name,
            "shape": list(array.shape),
            "datatype": datatype_of(array),
            "parameters": None,
        }
        binary = output.binary_data if output.binary_data is not None else default_binary
        if binary:
            chunk = _binary(array)
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            raw.append(chunk)
        else:
            tensor["data"] = _json_data(array)
        tensors.append(tensor)
    response = {
        "model_name": request.model_name,
        "model_version": request.model_version,
        "id": request.id or str(uuid.uuid4()),
        "parameters": None,
        "outputs": tensors,
    }
    text = json.dumps(response, separators=(",", ":")).encode()
    if not raw:
        return text, {"Content-Type": "application/json"}
    return b"".join([text, *raw]), {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(text)),
    }


# -- KServe v1 ---------------------------------------------------------------------------


def decode_predict_request(body: bytes) -> dict[str, Any]:
    """A v1 `:predict` body: a JSON object whose `instances` (or `inputs`) is a list."""
    request = _json_object(body, "instances")
    instances = request.get("instances", request.get("inputs"))
    if not isinstance(instances, list):
        raise InvalidInput("'instances' is missing: give a list of model inputs")
    return request


def encode_predict_response(predictions: Any) -> bytes:
    if isinstance(predictions, np.ndarray):
        predictions = _json_data(predictions) if predictions.ndim <= 1 else predictions.tolist()
    return json.dumps({"predictions": predictions}, separators=(",", ":")).encode()


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
