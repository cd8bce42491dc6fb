"""On-policy distillation (OPD): GRPO's clipped surrogate with the per-token teacher signal as the advantage.

One job: method.md section 3b (Thinking Machines, "On-Policy Distillation", 2025; GKD, Agarwal et al.,
arXiv 2306.13649, with lambda = 1 and the reverse direction; verl's on-policy distillation by policy gradient):

    A_t = teacher_weight * (logprobs_T[t] - logprobs_old[t])      # detached; the negative reverse-KL sample
        + outcome_weight * A_i                                     # optional GRPO group advantage (0: pure OPD)
    ratio_t     = exp(logprobs_S - logprobs_old)
    surrogate_t = min(ratio_t * A_t, clip(ratio_t, 1 - eps_low, 1 + eps_high) * A_t)

The student samples, the teacher scores every sampled token once per step, and each token is pushed up where the
teacher likes it more than the sampling policy did and down where it likes it less. ``E_{y ~ pi_old}[A_t]`` is
minus the per-token reverse KL(pi_old || pi_T), so at ratio 1 the policy gradient is the reverse-KL gradient of
KDRL's KD term, without its objective interference: there is no outcome reward at ``outcome_weight = 0``.

Pitfalls: A_t uses ``old_logprobs`` (the sampler), not the current ``logprobs``, so it is a constant of theta
during the ``mu`` inner updates, as in PPO; with teacher == student every A_t = 0 and, at ``outcome_weight = 0``, the
gradient is exactly 0. Padded positions are zeroed before the subtraction (garbage there may be -inf).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from rl_distill.core.losses.base import POLICY_LOSSES
from rl_distill.core.losses.grpo import GRPOConfig, GRPOLoss, teacher_log_ratio_mean
from rl_distill.core.masked import masked_mean
from rl_distill.core.methods import MethodSpec, register_method
from rl_distill.core.types import PolicyBatch
from rl_distill.typed_config import check_range


@dataclass(frozen=True)
class OPDConfig(GRPOConfig):
    """GRPO's settings plus the weights of the two advantage terms.

    Attributes:
        teacher_weight: weight of the per-token teacher term ``logprobs_T - logprobs_old`` (> 0; 1 = Thinking
            Machines' OPD).
        outcome_weight: weight of the GRPO group advantage of the response (>= 0; 0 = pure OPD).
    """

    teacher_weight: float = 1.0
    outcome_weight: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("teacher_weight", self.teacher_weight, 0.0, lo_open=True)
        check_range("outcome_weight", self.outcome_weight, 0.0)


@POLICY_LOSSES.register("opd")
class OPDLoss(GRPOLoss):
    """On-policy distillation: the teacher's per-token log-ratio is the advantage (method.md section 3b)."""

    name = "opd"
    config_cls = OPDConfig
    config: OPDConfig
    needs_teacher = True

    @property
    def uses_outcome_advantage(self) -> bool:
        return self.config.outcome_weight > 0

    def token_advantages(self, batch: PolicyBatch, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.config
        zero = batch.old_logprobs.new_zeros(())
        teacher = batch.teacher_logprobs.detach().where(mask, zero)
        old = batch.old_logprobs.detach().where(mask, zero)
        teacher_adv = teacher - old  # [N, T], the negative reverse-KL sample on the sampled token
        advantages = cfg.teacher_weight * teacher_adv
        if cfg.outcome_weight > 0:
            outcome = batch.advantages.detach()
            outcome = outcome.unsqueeze(-1) if outcome.dim() == 1 else outcome  # [N, 1] or [N, T]
            advantages = advantages + cfg.outcome_weight * outcome.to(advantages.dtype)
        return advantages, {
            "opd_teacher_adv": masked_mean(teacher_adv.float(), mask).detach(),
            "teacher_log_ratio": teacher_log_ratio_mean(batch.logprobs, batch.teacher_logprobs, mask),
        }


register_method(MethodSpec(
    "opd", trainer="rl", loss="opd", needs_teacher=True, tunable=("outcome_weight", "eps_high"),
    summary="on-policy distillation: per-token advantage log pi_T - log pi_old on student samples"))
