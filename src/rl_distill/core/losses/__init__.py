"""Policy losses selected by registered name: ``grpo``, ``kl_kd``, ``rlad``, ``sft`` (one module each).

Importing this package registers all four in :data:`POLICY_LOSSES`; build one with :func:`build_policy_loss`.
"""

from rl_distill.core.losses import grpo, kl_kd, rlad, sft  # noqa: F401  (registration side effect)
from rl_distill.core.losses.base import POLICY_LOSSES, PolicyLoss, build_policy_loss, masked_kl
from rl_distill.core.losses.grpo import GRPOConfig, GRPOLoss
from rl_distill.core.losses.kl_kd import BETA_SCHEDULES, KLKDConfig, KLKDLoss
from rl_distill.core.losses.rlad import ANCHORS, TEACHER_CLAMPS, RLADConfig, RLADLoss
from rl_distill.core.losses.sft import SFTConfig, SFTLoss

__all__ = [
    "ANCHORS",
    "BETA_SCHEDULES",
    "POLICY_LOSSES",
    "TEACHER_CLAMPS",
    "GRPOConfig",
    "GRPOLoss",
    "KLKDConfig",
    "KLKDLoss",
    "PolicyLoss",
    "RLADConfig",
    "RLADLoss",
    "SFTConfig",
    "SFTLoss",
    "build_policy_loss",
    "masked_kl",
]
