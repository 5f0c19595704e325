"""`report()` writes what Katib's StdOut collector and kubelab's runners read back."""

from __future__ import annotations

import pytest

from kubelab.workloads import report
from kubelab.workloads.metrics import parse_line


def test_report_round_trips_through_the_katib_format(capsys: pytest.CaptureFixture[str]) -> None:
    report(step=3, loss=0.25, accuracy=0.875)
    line = capsys.readouterr().out
    assert line == "step=3 loss=0.25 accuracy=0.875\n"
    assert parse_line(line) == (3, {"loss": 0.25, "accuracy": 0.875})


def test_parse_keeps_named_metrics_and_skips_non_numbers() -> None:
    assert parse_line("epoch=2 loss = 1e-3 lr=fast note=-", {"loss"}) == (2, {"loss": 0.001})
    assert parse_line("no metrics here") == (None, {})


def test_report_refuses_what_cannot_be_a_metric() -> None:
    with pytest.raises(ValueError, match="at least one metric"):
        report(step=1)
    with pytest.raises(ValueError, match="finite"):
        report(loss=float("nan"))
