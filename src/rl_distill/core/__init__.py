"""Core RL / distillation math in pure torch: batch types, masked reductions, chunked log-probs, advantages,
KL estimators, the compiled ratio kernel and the policy losses (GRPO, KL-KD, RLAD/TRRD, SFT).

Imports only torch, the standard library, :mod:`rl_distill.registry` and :mod:`rl_distill.typed_config`.
"""

from rl_distill.core.advantages import ADVANTAGE_ESTIMATORS, compute_advantages
from rl_distill.core.kernels import SurrogateOut, clipped_surrogate, clipped_surrogate_eager
from rl_distill.core.kl import KL_ESTIMATORS, full_vocab_kl, kl_estimate
from rl_distill.core.logprobs import token_entropy, token_logprobs
from rl_distill.core.losses import (
    POLICY_LOSSES,
    GRPOConfig,
    KLKDConfig,
    PolicyLoss,
    RLADConfig,
    SFTConfig,
    build_policy_loss,
)
from rl_distill.core.masked import AGGREGATIONS, aggregate, masked_mean, masked_sum
from rl_distill.core.types import BatchError, LossOutput, PolicyBatch

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "AGGREGATIONS",
    "KL_ESTIMATORS",
    "POLICY_LOSSES",
    "BatchError",
    "GRPOConfig",
    "KLKDConfig",
    "LossOutput",
    "PolicyBatch",
    "PolicyLoss",
    "RLADConfig",
    "SFTConfig",
    "SurrogateOut",
    "aggregate",
    "build_policy_loss",
    "clipped_surrogate",
    "clipped_surrogate_eager",
    "compute_advantages",
    "full_vocab_kl",
    "kl_estimate",
    "masked_mean",
    "masked_sum",
    "token_entropy",
    "token_logprobs",
]
