"""Supervised token cross-entropy on response tokens (offline distillation and warm starts).

One job: method.md section 4, the offline-KD baseline: the negative log-likelihood of the target tokens (teacher
samples kept after verification, or reference traces for a warm start), aggregated over the response mask.
``batch.logprobs`` are the student's log-probs of the *target* tokens (``token_logprobs(logits, target_ids)``); the
other PolicyBatch fields are not read and may be dummies.
"""

from __future__ import annotations

from dataclasses import dataclass

from rl_distill.core.losses.base import POLICY_LOSSES, PolicyLoss
from rl_distill.core.masked import AGGREGATIONS, aggregate, masked_mean
from rl_distill.core.methods import MethodSpec, register_method
from rl_distill.core.types import LossOutput, PolicyBatch, as_bool_mask, check_mask_and_advantages
from rl_distill.typed_config import check_choice, check_range


@dataclass(frozen=True)
class SFTConfig:
    """Attributes:
    agg: aggregation mode; default ``token-mean`` [choice] (every target token weighs the same, the usual LM loss).
    norm_length: Dr.GRPO-style constant for ``seq-mean-token-sum-norm``.
    """

    agg: str = "token-mean"
    norm_length: int | None = None

    def __post_init__(self) -> None:
        check_choice("agg", self.agg, AGGREGATIONS.names())
        if self.norm_length is not None:
            check_range("norm_length", self.norm_length, 1)


@POLICY_LOSSES.register("sft")
class SFTLoss(PolicyLoss):
    """Token cross-entropy: loss = agg(-log pi_S(y_t), mask). Metric ``nll``: token-mean NLL (whatever ``agg``)."""

    name = "sft"
    config_cls = SFTConfig
    config: SFTConfig

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        check_mask_and_advantages(batch.logprobs, batch.response_mask, None)
        mask = as_bool_mask(batch.response_mask)
        nll = -batch.logprobs.where(mask, batch.logprobs.new_zeros(()))  # [N, T], padding zeroed first
        loss = aggregate(nll, mask, self.config.agg, self.config.norm_length)
        return LossOutput(loss, {"nll": masked_mean(nll.detach().float(), mask)})


# Offline distillation (method.md section 4) is this loss on reject-sampled, verified teacher samples.
register_method(MethodSpec(
    "offline_kd", trainer="sft", loss="sft", needs_teacher=True,
    summary="SFT on reject-sampled (verified-correct) teacher outputs"))
