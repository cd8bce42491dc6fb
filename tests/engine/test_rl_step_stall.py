"""The zero-advantage stall warning: after ``patience`` all-zero-advantage steps in a row, once."""

from __future__ import annotations

import logging

import pytest

from rl_distill.core.losses import build_policy_loss
from rl_distill.engine.rl_step import StallWatch


def test_warns_once_after_a_streak(caplog: pytest.LogCaptureFixture) -> None:
    watch = StallWatch(patience=3)
    with caplog.at_level(logging.WARNING, logger="rl_distill.engine.rl_step"):
        for step, frac in enumerate([1.0, 1.0, 0.5, 1.0, 1.0], start=1):  # the 0.5 resets the streak
            watch.update(frac, step)
        assert not caplog.records
        watch.update(1.0, 6)  # third in a row
        assert len(caplog.records) == 1 and "3 steps in a row (up to step 6)" in caplog.text
        watch.update(1.0, 7)
        assert len(caplog.records) == 1


def test_pure_opd_does_not_depend_on_the_outcome_advantage() -> None:
    assert build_policy_loss("grpo").uses_outcome_advantage
    assert not build_policy_loss("opd").uses_outcome_advantage
    assert build_policy_loss("opd", {"outcome_weight": 0.5}).uses_outcome_advantage
