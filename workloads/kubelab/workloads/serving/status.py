"""What a model server's view shows besides its job record: request count and latency
(from its Prometheus `/metrics`) and a ready-to-send v2 request (from its metadata).
Pure functions of what the server answered; the REST handler and `ModelServer` fetch.
"""

from __future__ import annotations

import math
from typing import Any

REQUESTS = "kubelab_inference_requests_total"
LATENCY = "kubelab_inference_request_seconds"
_ZERO = {"BOOL": False, "BYTES": ""}


def summarize_metrics(text: str, model: str) -> dict[str, Any]:
    """`{requests, errors, by_code, latency_ms: {mean, p50, p99}}` of `model`'s inference
    requests (v1 and v2 together); percentiles interpolated in the histogram buckets."""
    from prometheus_client.parser import text_string_to_metric_families

    by_code: dict[str, float] = {}
    buckets: dict[float, float] = {}
    total_seconds = count = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model_name") != model:
                continue
            if sample.name == REQUESTS:
                code = sample.labels["code"]
                by_code[code] = by_code.get(code, 0) + sample.value
            elif sample.name == f"{LATENCY}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0) + sample.value
            elif sample.name == f"{LATENCY}_sum":
                total_seconds += sample.value
            elif sample.name == f"{LATENCY}_count":
                count += sample.value
    requests = int(sum(by_code.values()))
    latency = None
    if count:
        latency = {
            "mean": round(1000 * total_seconds / count, 3),
            "p50": _quantile(buckets, count, 0.50),
            "p99": _quantile(buckets, count, 0.99),
        }
    return {
        "requests": requests,
        "errors": int(sum(v for c, v in by_code.items() if not c.startswith("2"))),
        "by_code": {c: int(v) for c, v in sorted(by_code.items())},
        "latency_ms": latency,
    }


def _quantile(buckets: dict[float, float], count: float, q: float) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket the rank falls in."""
    rank = q * count
    lower_bound, lower_count = 0.0, 0.0
    for bound in sorted(buckets):
        cumulative = buckets[bound]
        if cumulative >= rank:
            if math.isinf(bound):
                return round(1000 * lower_bound, 3)
            share = (rank - lower_count) / max(cumulative - lower_count, 1e-12)
            return round(1000 * (lower_bound + (bound - lower_bound) * share), 3)
        lower_bound, lower_count = bound, cumulative
    return None


def example_request(metadata: dict[str, Any]) -> dict[str, Any]:
    """A v2 infer body with one row of zeros per input, shaped as the metadata says
    (variable dimensions -1 become 1), for a "Try it" box to start from."""
    inputs = []
    for tensor in metadata.get("inputs") or []:
        shape = [1 if d is None or d < 0 else int(d) for d in tensor.get("shape") or [1]]
        datatype = tensor.get("datatype") or "FP32"
        zero: Any = _ZERO.get(datatype, 0.0 if datatype.startswith("FP") else 0)
        inputs.append(
            {
                "name": tensor.get("name") or f"input-{len(inputs)}",
                "shape": shape,
                "datatype": datatype,
                "data": [zero] * math.prod(shape),
            }
        )
    return {"inputs": inputs}
