"""GRPO's clipped-ratio policy loss, and the shared ratio-loss core that kl_kd and rlad extend.

One job: the objective of method.md section 1,

    ratio_t     = exp(logprobs_S - logprobs_anchor)                 # GRPO: anchor = old policy
    surrogate_t = min(ratio_t * A, clip(ratio_t, 1 - eps_low, 1 + eps_high) * A)   [+ optional dual-clip]
    loss        = -agg(surrogate, mask) + beta * agg(KL_t(pi_S || pi_ref), mask)

DeepSeekMath (arXiv 2402.03300) Eq. 3 with its k3 KL (Eq. 4); asymmetric clip-higher eps_low/eps_high from DAPO
(arXiv 2503.14476) Sec. 3.1 (Clip-Higher); aggregation modes in :mod:`rl_distill.core.masked`.

The core (:class:`GRPOLoss`) has three hooks: :meth:`GRPOLoss.anchor` (RLAD replaces the old-policy anchor with the
teacher/old mixture), :meth:`GRPOLoss.token_advantages` (OPD replaces the outcome advantage by the per-token teacher
signal) and :meth:`GRPOLoss.extra_loss` (KL-KD adds its reverse-KL term). Everything else, the compiled ratio
kernel included, is shared.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from rl_distill.core.kernels import clipped_surrogate
from rl_distill.core.kl import KL_ESTIMATORS
from rl_distill.core.losses.base import POLICY_LOSSES, PolicyLoss, masked_kl
from rl_distill.core.masked import AGGREGATIONS, DEFAULT_AGG, aggregate, masked_mean
from rl_distill.core.methods import MethodSpec, register_method
from rl_distill.core.types import (
    LossOutput,
    PolicyBatch,
    as_bool_mask,
    check_mask_and_advantages,
    check_same_layout,
    require,
)
from rl_distill.typed_config import check_choice, check_range


@dataclass(frozen=True)
class GRPOConfig:
    """GRPO loss settings (defaults: RLAD's logic setup, method.md section 1).

    Attributes:
        eps_low: lower clip, ratio >= 1 - eps_low; in [0, 1).
        eps_high: upper clip, ratio <= 1 + eps_high (clip-higher, DAPO); >= 0.
        dual_clip: for A < 0, bound the surrogate below by ``dual_clip * A`` (> 1, e.g. 3.0); None = off.
        beta: weight of KL(pi_S || pi_ref); 0 = no reference model needed.
        kl_estimator: k1 | k2 | k3 for the reference KL.
        agg: seq-mean-token-mean | token-mean | seq-mean-token-sum-norm.
        norm_length: Dr.GRPO's constant L for ``seq-mean-token-sum-norm`` (e.g. max_new_tokens); None = the
            batch's longest response.
        compile: run the ratio kernel through ``torch.compile`` (eager fallback on failure).
    """

    eps_low: float = 0.2
    eps_high: float = 0.28
    dual_clip: float | None = None
    beta: float = 0.0
    kl_estimator: str = "k3"
    agg: str = DEFAULT_AGG
    norm_length: int | None = None
    compile: bool = True

    def __post_init__(self) -> None:
        check_range("eps_low", self.eps_low, 0.0, 1.0, hi_open=True)
        check_range("eps_high", self.eps_high, 0.0)
        if self.dual_clip is not None:
            check_range("dual_clip", self.dual_clip, 1.0, lo_open=True)
        check_range("beta", self.beta, 0.0)
        check_choice("kl_estimator", self.kl_estimator, KL_ESTIMATORS.names())
        check_choice("agg", self.agg, AGGREGATIONS.names())
        if self.norm_length is not None:
            check_range("norm_length", self.norm_length, 1)


@POLICY_LOSSES.register("grpo")
class GRPOLoss(PolicyLoss):
    """GRPO (DeepSeekMath Eq. 3) with clip-higher; the base of :class:`KLKDLoss` and :class:`RLADLoss`."""

    name = "grpo"
    config_cls = GRPOConfig
    config: GRPOConfig

    def anchor(self, batch: PolicyBatch, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """log of the ratio's denominator [N, T] and any metrics it yields. GRPO: the old policy."""
        return batch.old_logprobs, {}

    @property
    def uses_outcome_advantage(self) -> bool:
        """Whether the surrogate's advantage comes from the outcome reward (all-equal groups then give no gradient)."""
        return True

    def token_advantages(self, batch: PolicyBatch, mask: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The advantages the surrogate multiplies, [N] or [N, T], and any metrics. GRPO: the outcome advantage."""
        return batch.advantages, {}

    def extra_loss(self, batch: PolicyBatch, mask: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        """A term added to the loss (already weighted) and its metrics. GRPO: none."""
        return None, {}

    def check_batch(self, batch: PolicyBatch) -> None:
        """Raise :class:`~rl_distill.core.types.BatchError` on missing fields or shape/dtype mismatches."""
        check_mask_and_advantages(batch.logprobs, batch.response_mask, batch.advantages)
        ref = require(batch, "ref_logprobs", f"{self.name} with beta > 0") if self.needs_ref else None
        teacher = require(batch, "teacher_logprobs", self.name) if self.needs_teacher else None
        check_same_layout("logprobs", batch.logprobs, old_logprobs=batch.old_logprobs, ref_logprobs=ref,
                          teacher_logprobs=teacher)

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        cfg = self.config
        self.check_batch(batch)
        mask = as_bool_mask(batch.response_mask)  # [N, T]
        anchor, metrics = self.anchor(batch, mask)
        advantages, adv_metrics = self.token_advantages(batch, mask)
        metrics.update(adv_metrics)
        out = clipped_surrogate(batch.logprobs, batch.old_logprobs, anchor, advantages, mask,
                                eps_low=cfg.eps_low, eps_high=cfg.eps_high, dual_clip=cfg.dual_clip,
                                compile=cfg.compile)
        pg_loss = -aggregate(out.surrogate, mask, cfg.agg, cfg.norm_length)
        loss = pg_loss
        metrics = {**out.metrics, **metrics, "pg_loss": pg_loss.detach()}
        if cfg.beta > 0:
            # KL(pi_S || pi_ref): p = student (the sampler, up to the ratio), q = reference.
            kl_ref = aggregate(masked_kl(batch.logprobs, batch.ref_logprobs, mask, cfg.kl_estimator), mask,
                               cfg.agg, cfg.norm_length)
            loss = loss + cfg.beta * kl_ref
            metrics["kl_ref"] = kl_ref.detach()
        extra, extra_metrics = self.extra_loss(batch, mask)
        if extra is not None:
            loss = loss + extra
        metrics.update(extra_metrics)
        return LossOutput(loss, metrics)


def teacher_log_ratio_mean(logprobs: Tensor, teacher_logprobs: Tensor, mask: Tensor) -> Tensor:
    """Detached mean over real tokens of log(pi_S / pi_T) (unclamped): > 0 where the student out-bids the teacher."""
    return masked_mean((logprobs.detach() - teacher_logprobs).float(), mask).detach()


register_method(MethodSpec(
    "grpo", trainer="rl", loss="grpo", needs_teacher=False, tunable=("eps_high",),
    summary="clipped group-relative policy gradient (clip-higher), no teacher"))
