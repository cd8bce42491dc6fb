"""RLAD's TRRD objective: the GRPO surrogate with a teacher/old-policy mixture anchor.

One job: the anchor of method.md section 3 (RLAD, arXiv 2602.22495, Eq. 3-5; stabiliser from Appendix B):

    log_anchor_t = alpha * logprobs_old + (1 - alpha) * logprobs_T        # geometric (log-linear) mixture, Eq. 4
    ratio_t      = exp(logprobs_S - log_anchor_t)                         # Eq. 5, then GRPO's clip/min/agg

alpha is the weight on the old policy (the paper's equations and Appendix C): alpha = 1 is exactly GRPO, alpha -> 0
anchors to the teacher. The anchor is constant in theta, so unclipped tokens get GRPO's gradient A * ratio *
grad log pi_S; the teacher acts only through *where the clip saturates*: at theta = theta_old the ratio is already
(pi_old / pi_T)^(1 - alpha), so tokens the teacher likes (pi_T > pi_old, ratio < 1) have more room to rise when A > 0
and hit the lower clip (zero gradient: protected) when A < 0; tokens it dislikes are the reverse.

Teacher log-ratio clamp (Appendix B): ``log(pi_S / pi_T)`` is clamped to [-c, c] before mixing. Written on the
teacher side, that is ``logprobs_T_eff = clamp(logprobs_T, logprobs_S - c, logprobs_S + c)``; modes:

- ``hard`` (default [choice], torch.clamp): where the clamp is active the teacher log-ratio is constant, so the
  ratio's gradient there is scaled by alpha (the bound moves with the student);
- ``straight_through``: the clamped value with the full gradient (``logprobs_T_eff`` detached);
- ``none``: no clamp.

``anchor: arithmetic`` (an ablation beyond the paper): log(alpha * pi_old + (1 - alpha) * pi_T_eff), computed with
logaddexp. Both anchors are exact at the ends: alpha = 1 gives the old policy bit for bit, and so does
logprobs_T == logprobs_old whenever the clamp is inactive (``torch.lerp`` returns ``end`` exactly when
start == end or weight == 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from rl_distill.core.losses.base import POLICY_LOSSES
from rl_distill.core.losses.grpo import GRPOConfig, GRPOLoss, teacher_log_ratio_mean
from rl_distill.core.masked import masked_mean
from rl_distill.core.methods import MethodSpec, register_method
from rl_distill.core.types import PolicyBatch
from rl_distill.registry import Registry
from rl_distill.typed_config import check_choice, check_range

TeacherClamp = Callable[[Tensor, Tensor, float], Tensor]  # (student, teacher, c) -> effective teacher log-probs
Anchor = Callable[[Tensor, Tensor, float], Tensor]  # (old, teacher_eff, alpha) -> log anchor
TEACHER_CLAMPS: Registry[TeacherClamp] = Registry("teacher clamp mode")
ANCHORS: Registry[Anchor] = Registry("anchor")


@TEACHER_CLAMPS.register("hard")
def _hard(student: Tensor, teacher: Tensor, bound: float) -> Tensor:
    # Gradient flows into the bounds (the student) where they bind: the clamped log-ratio is then constant.
    return torch.clamp(teacher, min=student - bound, max=student + bound)


@TEACHER_CLAMPS.register("straight_through")
def _straight_through(student: Tensor, teacher: Tensor, bound: float) -> Tensor:
    return torch.clamp(teacher, min=student - bound, max=student + bound).detach()


@TEACHER_CLAMPS.register("none")
def _none(student: Tensor, teacher: Tensor, bound: float) -> Tensor:
    return teacher


@ANCHORS.register("geometric")
def _geometric(old: Tensor, teacher: Tensor, alpha: float) -> Tensor:
    return torch.lerp(teacher, old, alpha)  # alpha * old + (1 - alpha) * teacher, exact at the ends


@ANCHORS.register("arithmetic")
def _arithmetic(old: Tensor, teacher: Tensor, alpha: float) -> Tensor:
    log_alpha = math.log(alpha) if alpha > 0 else -math.inf
    log_rest = math.log1p(-alpha) if alpha < 1 else -math.inf
    return torch.logaddexp(old + log_alpha, teacher + log_rest)


@dataclass(frozen=True)
class RLADConfig(GRPOConfig):
    """GRPO's settings plus the mixture anchor.

    Attributes:
        alpha: weight on the old policy in [0, 1]; 1 = GRPO, 0 = pure teacher anchor. Paper default 0.5.
        teacher_clamp: hard | straight_through | none (Appendix B stabiliser).
        teacher_clamp_value: c > 0, the teacher log-ratio is clamped to [-c, c] (paper: 1).
        anchor: geometric (paper Eq. 4) | arithmetic (logsumexp mixture; ablation).
    """

    alpha: float = 0.5
    teacher_clamp: str = "hard"
    teacher_clamp_value: float = 1.0
    anchor: str = "geometric"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("alpha", self.alpha, 0.0, 1.0)
        check_choice("teacher_clamp", self.teacher_clamp, TEACHER_CLAMPS.names())
        check_range("teacher_clamp_value", self.teacher_clamp_value, 0.0, lo_open=True)
        check_choice("anchor", self.anchor, ANCHORS.names())


@POLICY_LOSSES.register("rlad")
class RLADLoss(GRPOLoss):
    """TRRD (RLAD Eq. 3-5): GRPO's loss with the ratio taken against the teacher/old mixture."""

    name = "rlad"
    config_cls = RLADConfig
    config: RLADConfig
    needs_teacher = True

    def anchor(self, batch: PolicyBatch, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.config
        student, teacher = batch.logprobs, batch.teacher_logprobs
        teacher_eff = TEACHER_CLAMPS.get(cfg.teacher_clamp)(student, teacher, cfg.teacher_clamp_value)
        log_anchor = ANCHORS.get(cfg.anchor)(batch.old_logprobs, teacher_eff, cfg.alpha)  # [N, T]
        clamped = (teacher_eff.detach() != teacher).float()  # where the Appendix-B clamp binds
        return log_anchor, {
            "teacher_log_ratio": teacher_log_ratio_mean(student, teacher, mask),
            "teacher_clamp_frac": masked_mean(clamped, mask).detach(),
        }


register_method(MethodSpec(
    "rlad", trainer="rl", loss="rlad", needs_teacher=True, tag_params=("alpha",), tunable=("alpha", "eps_high"),
    summary="GRPO with the ratio taken against the teacher / old-policy mixture anchor (TRRD, RLAD Eq. 3-5)"))
