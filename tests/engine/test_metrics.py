"""Metric accumulation: tensors stay tensors until flush, flush averages since the last flush."""

from __future__ import annotations

import pytest
import torch

from rl_distill.engine.metrics import MetricAccumulator, MetricHistory


def test_flush_means_and_resets():
    acc = MetricAccumulator()
    acc.add("train/loss", torch.tensor(1.0))
    acc.add("train/loss", torch.tensor(3.0))
    acc.add_all("rollout/", {"reward_mean": 0.5})
    assert acc.flush() == pytest.approx({"train/loss": 2.0, "rollout/reward_mean": 0.5})  # (1 + 3) / 2
    assert acc.flush() == {}


def test_history_round_trip():
    hist = MetricHistory()
    hist.record({"a": 1.0}, 1)
    hist.record({"a": 2.0, "b": 5.0}, 2)
    again = MetricHistory(hist.to_json())
    assert again.data == {"a": [(1, 1.0), (2, 2.0)], "b": [(2, 5.0)]}
    assert again.last() == {"a": 2.0, "b": 5.0}
