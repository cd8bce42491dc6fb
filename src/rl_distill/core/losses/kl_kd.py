"""KL-KD (KDRL): GRPO plus a reverse-KL pull toward the teacher on the student's own rollouts.

One job: method.md section 2 (KDRL, arXiv 2506.02208, Sec. 3, with its best settings):

    loss = loss_GRPO + beta_kd(progress) * agg(KL_t(pi_S || pi_T), mask)

- Reverse KL, student || teacher, estimated per sampled token with k2 by default (its gradient is the exact
  reverse-KL gradient in expectation), k1/k3 selectable; or, with ``full_vocab``, computed exactly over the whole
  vocabulary from both sets of logits, chunked over positions (:func:`rl_distill.core.kl.full_vocab_kl`).
- ``direction: forward`` (needs ``full_vocab``) takes KL(teacher || student) at every position of the student's own
  rollouts instead: GKD's on-policy forward KL (Agarwal et al., arXiv 2306.13649, Eq. 2 with lambda = 1, the
  generalized JSD at beta = 0). Its gradient per position is ``p_S - p_T`` on the student's logits: mass goes
  straight to the token the teacher prefers, where the sampled-token reverse KL can only push the sampled token
  down and spread the mass over the student's own alternatives.
- beta_kd follows a named schedule of ``batch.progress`` in [0, 1]: ``linear`` from ``beta_kd_start`` to
  ``beta_kd_end`` (KDRL's best: 5e-3 -> 1e-3) or ``constant`` (= ``beta_kd_start``).
- The KD term ignores the advantage: this is the "objective interference" that RLAD removes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from rl_distill.core.kl import KL_ESTIMATORS, full_vocab_kl
from rl_distill.core.losses.base import POLICY_LOSSES, masked_kl
from rl_distill.core.losses.grpo import GRPOConfig, GRPOLoss, teacher_log_ratio_mean
from rl_distill.core.masked import aggregate
from rl_distill.core.methods import MethodSpec, register_method
from rl_distill.core.types import BatchError, PolicyBatch, require
from rl_distill.registry import Registry
from rl_distill.typed_config import ConfigError, check_choice, check_range

KD_DIRECTIONS = ("reverse", "forward")
BetaSchedule = Callable[[float, float, float], float]  # (start, end, progress) -> beta
BETA_SCHEDULES: Registry[BetaSchedule] = Registry("beta schedule")


@BETA_SCHEDULES.register("constant")
def _constant(start: float, end: float, progress: float) -> float:
    return start


@BETA_SCHEDULES.register("linear")
def _linear(start: float, end: float, progress: float) -> float:
    return start + (end - start) * progress


@dataclass(frozen=True)
class KLKDConfig(GRPOConfig):
    """GRPO's settings plus the KD term.

    Attributes:
        beta_kd_start, beta_kd_end: KD weight at progress 0 and 1 (>= 0).
        beta_schedule: linear | constant (constant uses beta_kd_start).
        kd_estimator: k1 | k2 | k3 for the sampled-token reverse KL.
        full_vocab: exact KL over the vocabulary (needs student and teacher logits in the batch).
        direction: reverse = KL(student || teacher) (KDRL's); forward = KL(teacher || student) (GKD's on-policy
            forward KL; only with full_vocab, since it cannot be estimated from the sampled tokens alone).
        vocab_chunk_size: positions per chunk for the full-vocabulary KL; None = automatic (8M elements).
    """

    beta_kd_start: float = 5e-3
    beta_kd_end: float = 1e-3
    beta_schedule: str = "linear"
    kd_estimator: str = "k2"
    full_vocab: bool = False
    direction: str = "reverse"
    vocab_chunk_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("beta_kd_start", self.beta_kd_start, 0.0)
        check_range("beta_kd_end", self.beta_kd_end, 0.0)
        check_choice("beta_schedule", self.beta_schedule, BETA_SCHEDULES.names())
        check_choice("kd_estimator", self.kd_estimator, KL_ESTIMATORS.names())
        check_choice("direction", self.direction, KD_DIRECTIONS)
        if self.direction == "forward" and not self.full_vocab:
            raise ConfigError(
                "direction='forward' needs full_vocab=true: the forward KL(teacher || student) cannot be estimated "
                "from the student's sampled tokens alone. Set full_vocab: true, or direction: reverse.")
        if self.vocab_chunk_size is not None:
            check_range("vocab_chunk_size", self.vocab_chunk_size, 1)


@POLICY_LOSSES.register("kl_kd")
class KLKDLoss(GRPOLoss):
    """KDRL: GRPO + beta_kd * reverse KL(student || teacher)."""

    name = "kl_kd"
    config_cls = KLKDConfig
    config: KLKDConfig
    needs_teacher = True

    @property
    def needs_logits(self) -> bool:
        return self.config.full_vocab

    def beta_kd(self, progress: float) -> float:
        """The KD weight at training ``progress`` in [0, 1]."""
        if not 0.0 <= progress <= 1.0:
            raise BatchError(f"PolicyBatch.progress={progress!r} is out of range; valid range is [0, 1].")
        cfg = self.config
        return BETA_SCHEDULES.get(cfg.beta_schedule)(cfg.beta_kd_start, cfg.beta_kd_end, progress)

    def extra_loss(self, batch: PolicyBatch, mask: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        cfg = self.config
        beta_kd = self.beta_kd(batch.progress)
        if cfg.full_vocab:
            student_logits = require(batch, "student_logits", "kl_kd with full_vocab")
            teacher_logits = require(batch, "teacher_logits", "kl_kd with full_vocab")
            teacher_logits = teacher_logits.detach()
            if cfg.direction == "reverse":  # KL(student || teacher) exactly per position
                per_token = full_vocab_kl(student_logits, teacher_logits, cfg.vocab_chunk_size)
            else:  # KL(teacher || student): GKD's on-policy forward KL
                per_token = full_vocab_kl(teacher_logits, student_logits, cfg.vocab_chunk_size)
        else:
            per_token = masked_kl(batch.logprobs, batch.teacher_logprobs, mask, cfg.kd_estimator)
        kd = aggregate(per_token, mask, cfg.agg, cfg.norm_length)
        metrics = {
            "kd_loss": kd.detach(),
            "beta_kd": kd.new_tensor(beta_kd).detach(),
            "teacher_log_ratio": teacher_log_ratio_mean(batch.logprobs, batch.teacher_logprobs, mask),
        }
        return beta_kd * kd, metrics


register_method(MethodSpec(
    "kl_kd", trainer="rl", loss="kl_kd", needs_teacher=True, tunable=("eps_high", "beta_kd_start", "beta_kd_end"),
    summary="GRPO + beta_kd * reverse KL(student || teacher) on student samples (KDRL)"))
