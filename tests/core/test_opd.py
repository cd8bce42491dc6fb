"""On-policy distillation (method.md section 3b): hand-computed per-token advantages, values and gradients."""

from __future__ import annotations

import pytest
import torch

from rl_distill.core.losses import build_policy_loss
from rl_distill.core.methods import METHODS
from rl_distill.core.types import PolicyBatch
from rl_distill.typed_config import ConfigError

EAGER = {"compile": False}


def _batch(student: torch.Tensor, old: torch.Tensor, teacher: torch.Tensor, adv: torch.Tensor,
           mask: torch.Tensor) -> PolicyBatch:
    return PolicyBatch(logprobs=student.clone().requires_grad_(True), old_logprobs=old, advantages=adv,
                       response_mask=mask, teacher_logprobs=teacher)


def _loss_grad(config: dict, batch: PolicyBatch):
    out = build_policy_loss("opd", {**EAGER, **config})(batch)
    out.loss.backward()
    return out, batch.logprobs.grad


def test_registered_as_a_teacher_method() -> None:
    spec = METHODS.get("opd")
    assert (spec.trainer, spec.loss, spec.needs_teacher) == ("rl", "opd", True)
    assert build_policy_loss("opd").needs_teacher


def test_teacher_equal_to_student_gives_zero_loss_and_gradient() -> None:
    torch.manual_seed(0)
    lp = -torch.rand(3, 4) - 0.1
    batch = _batch(lp, lp.clone(), lp.clone(), torch.tensor([1.0, -1.0, 0.5]), torch.ones(3, 4, dtype=torch.bool))
    out, grad = _loss_grad({}, batch)
    assert out.loss.item() == 0.0
    assert torch.count_nonzero(grad) == 0
    assert out.metrics["opd_teacher_adv"].item() == 0.0


def test_hand_computed_per_token_advantage() -> None:
    # At ratio 1 (student == old) the surrogate is A_t itself. One row, 3 tokens (last one padding):
    # old = [-1, -2, -9], teacher = [-0.5, -3, -inf] -> A_t = [+0.5, -1.0, (masked)]
    # seq-mean-token-mean: -(0.5 - 1.0) / 2 = 0.25 ; d loss / d lp_t = -A_t * ratio / |o| = [-0.25, +0.5, 0]
    old = torch.tensor([[-1.0, -2.0, -9.0]])
    teacher = torch.tensor([[-0.5, -3.0, float("-inf")]])
    mask = torch.tensor([[True, True, False]])
    out, grad = _loss_grad({}, _batch(old, old.clone(), teacher, torch.tensor([2.0]), mask))
    assert out.loss.item() == pytest.approx(0.25)
    torch.testing.assert_close(grad, torch.tensor([[-0.25, 0.5, 0.0]]))
    assert out.metrics["opd_teacher_adv"].item() == pytest.approx(-0.25)  # mean of +0.5 and -1.0


def test_outcome_weight_mixes_in_the_group_advantage() -> None:
    # A_t = [0.5, -1.0] + 0.5 * A_i(=2) = [1.5, 0.0] -> loss -(1.5 + 0) / 2 = -0.75 ; grad [-0.75, 0]
    old = torch.tensor([[-1.0, -2.0]])
    teacher = torch.tensor([[-0.5, -3.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    out, grad = _loss_grad({"outcome_weight": 0.5}, _batch(old, old.clone(), teacher, torch.tensor([2.0]), mask))
    assert out.loss.item() == pytest.approx(-0.75)
    torch.testing.assert_close(grad, torch.tensor([[-0.75, 0.0]]))


def test_clipping_applies_to_the_teacher_advantage() -> None:
    # ratio = e^{0.5} = 1.6487 > 1 + 0.28 with A_t = +1 > 0: clipped, surrogate 1.28, zero gradient on that token.
    old = torch.tensor([[-1.0]])
    student = old + 0.5
    teacher = old + 1.0
    out, grad = _loss_grad({}, _batch(student, old, teacher, torch.tensor([0.0]), torch.ones(1, 1, dtype=torch.bool)))
    assert out.loss.item() == pytest.approx(-1.28)
    assert grad.item() == 0.0
    assert out.metrics["clipfrac_high"].item() == 1.0


@pytest.mark.parametrize("bad", [{"teacher_weight": 0.0}, {"outcome_weight": -1.0}, {"outcome_weight": float("nan")}])
def test_bad_weights_fail_naming_the_key(bad: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        build_policy_loss("opd", bad)
