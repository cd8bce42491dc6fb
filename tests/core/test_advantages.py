"""Advantage estimators by name (hand-computed) and the zero-advantage group fraction."""

from __future__ import annotations

import pytest
import torch

from rl_distill.core.advantages import ADVANTAGE_ESTIMATORS, compute_advantages
from rl_distill.registry import UnknownNameError

# Two prompts, G = 4. Group 0 rewards (1, 0, 0, 1): mean 0.5, population std 0.5.
# Group 1 rewards all 2.0: no signal.
REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])


def test_names():
    assert ADVANTAGE_ESTIMATORS.names() == ["dr_grpo", "grpo", "rloo"]


def test_grpo_hand_computed():
    adv, metrics = compute_advantages("grpo", REWARDS, group_size=4)
    a = 0.5 / (0.5 + 1e-6)  # (1 - 0.5) / (0.5 + 1e-6)
    torch.testing.assert_close(adv, torch.tensor([a, -a, -a, a, 0, 0, 0, 0]))
    assert metrics["zero_adv_frac"].item() == pytest.approx(0.5)  # 1 of 2 groups
    assert adv.dtype == torch.float32 and adv.shape == (8,)


def test_dr_grpo_hand_computed():
    adv, _ = compute_advantages("dr_grpo", REWARDS, group_size=4)  # r - 0.5, no std division
    torch.testing.assert_close(adv, torch.tensor([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0]))


def test_rloo_hand_computed():
    # r_0 = 1, others (0, 0, 1): leave-one-out mean 1/3 -> 2/3; r_1 = 0, others (1, 0, 1): mean 2/3 -> -2/3
    adv, _ = compute_advantages("rloo", REWARDS, group_size=4)
    torch.testing.assert_close(adv, torch.tensor([2 / 3, -2 / 3, -2 / 3, 2 / 3, 0, 0, 0, 0]))


def test_constant_group_is_exactly_zero():
    # 0.1 * 8 does not sum exactly in binary; the residue must not leak into the advantage.
    adv, metrics = compute_advantages("grpo", [0.1] * 8, group_size=8)
    assert torch.equal(adv, torch.zeros(8)) and metrics["zero_adv_frac"].item() == 1.0


def test_errors():
    with pytest.raises(UnknownNameError, match="dr_grpo"):
        compute_advantages("ppo", REWARDS, 4)
    with pytest.raises(ValueError, match="multiple of group_size=3"):
        compute_advantages("grpo", REWARDS, 3)
    with pytest.raises(ValueError, match="group_size"):
        compute_advantages("grpo", REWARDS, 0)
    with pytest.raises(ValueError, match="rloo needs group_size >= 2"):
        compute_advantages("rloo", torch.tensor([1.0, 0.0]), 1)
