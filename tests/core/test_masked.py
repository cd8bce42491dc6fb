"""Masked reductions and the named aggregation modes (hand-computed)."""

from __future__ import annotations

import math

import pytest
import torch

from rl_distill.core.masked import AGGREGATIONS, aggregate, masked_mean, masked_sum
from rl_distill.registry import UnknownNameError

# Two responses: row 0 has 3 tokens (1, 2, 3), row 1 has 1 token (10); the rest is padding with garbage.
VALUES = torch.tensor([[1.0, 2.0, 3.0, 99.0], [10.0, -7.0, 5.0, 4.0]])
MASK = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)


def test_masked_sum_and_mean():
    assert masked_sum(VALUES, MASK).item() == pytest.approx(16.0)  # 1 + 2 + 3 + 10
    assert masked_mean(VALUES, MASK).item() == pytest.approx(4.0)  # 16 / 4 tokens
    torch.testing.assert_close(masked_mean(VALUES, MASK, dim=-1), torch.tensor([2.0, 10.0]))  # 6/3, 10/1


@pytest.mark.parametrize(("mode", "expected"), [
    ("seq-mean-token-mean", 6.0),  # (6/3 + 10/1) / 2 = (2 + 10) / 2
    ("token-mean", 4.0),  # 16 / 4
    ("seq-mean-token-sum-norm", 16.0 / 6.0),  # 16 / (2 responses * L = longest response 3)
])
def test_modes_hand_computed(mode, expected):
    assert aggregate(VALUES, MASK, mode).item() == pytest.approx(expected)


def test_dr_grpo_constant_length():
    # 16 / (2 responses * L = 8)
    assert aggregate(VALUES, MASK, "seq-mean-token-sum-norm", norm_length=8).item() == pytest.approx(1.0)


def test_float_mask_is_binary():
    assert aggregate(VALUES, MASK.float(), "token-mean").item() == pytest.approx(4.0)


@pytest.mark.parametrize("mode", AGGREGATIONS.names())
def test_all_masked_rows_never_nan(mode):
    values = torch.tensor([[1.0, float("nan")], [float("inf"), 2.0]], requires_grad=True)
    mask = torch.tensor([[0, 0], [0, 1]], dtype=torch.bool)  # row 0 empty; garbage at padding
    out = aggregate(values, mask, mode)
    assert out.item() == pytest.approx(2.0 if mode != "seq-mean-token-sum-norm" else 2.0 / 1)  # 1 response, L=1
    out.backward()
    assert torch.isfinite(values.grad).all()
    assert values.grad[1, 1].item() == pytest.approx(1.0) and values.grad[0].abs().sum() == 0
    # A fully masked batch aggregates to 0, not NaN.
    empty = aggregate(torch.ones(3, 4), torch.zeros(3, 4, dtype=torch.bool), mode)
    assert empty.item() == 0.0 and not math.isnan(empty.item())


def test_empty_rows_do_not_count_as_responses():
    # seq-mean over the non-empty rows only: adding an all-padding row changes nothing.
    padded_values = torch.cat([VALUES, torch.full((1, 4), 123.0)])
    padded_mask = torch.cat([MASK, torch.zeros(1, 4, dtype=torch.bool)])
    for mode in AGGREGATIONS.names():
        assert aggregate(padded_values, padded_mask, mode).item() == pytest.approx(aggregate(VALUES, MASK, mode).item())


def test_unknown_mode_lists_valid_names():
    with pytest.raises(UnknownNameError, match="token-mean"):
        aggregate(VALUES, MASK, "token_mean")


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        aggregate(VALUES, MASK[:, :2])
