"""Learning-rate schedule: warmup then cosine / linear / constant decay, stepping once per training step."""

from __future__ import annotations

import math

import pytest
import torch

from rl_distill.engine.config import ScheduleConfig
from rl_distill.engine.schedule import build_scheduler, lr_factor


def test_cosine_with_warmup():
    cfg = ScheduleConfig(warmup_steps=2, decay="cosine", min_lr_ratio=0.1)
    # total 6: warmup s=0,1 -> 1/2, 2/2; decay over s=2..5 (span 3): 0.1 + 0.9 * 0.5 * (1 + cos(pi * k / 3)).
    expected = [0.5, 1.0] + [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 3)) for k in range(4)]
    assert [lr_factor(s, 6, cfg) for s in range(6)] == pytest.approx(expected)
    assert lr_factor(5, 6, cfg) == pytest.approx(0.1)  # ends exactly at min_lr_ratio


def test_constant_and_linear():
    assert [lr_factor(s, 4, ScheduleConfig(decay="constant")) for s in range(4)] == [1.0] * 4
    linear = ScheduleConfig(decay="linear", min_lr_ratio=0.0)
    assert [lr_factor(s, 5, linear) for s in range(5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])


def test_scheduler_applies_factor_per_step():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = build_scheduler(opt, 3, ScheduleConfig(decay="linear", min_lr_ratio=0.0))
    lrs = []
    for _ in range(3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2.0, 1.0, 0.0])
