"""Policy losses selected by registered name, one module each (``grpo``, ``kl_kd``, ``rlad``, ``opd``, ``sft``, ...).

Importing this package imports every module in it, which registers each loss in :data:`POLICY_LOSSES` and each
method spec in :data:`~rl_distill.core.methods.METHODS`: a new method is one new module here (plus its YAML block),
not an edit of this file. Build a loss with :func:`build_policy_loss`.
"""

import importlib
import pkgutil

from rl_distill.core.losses.base import POLICY_LOSSES, PolicyLoss, build_policy_loss, masked_kl

# Explicit discovery, in sorted order: every sibling module registers its loss (and method) on import.
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    importlib.import_module(f"{__name__}.{_info.name}")

from rl_distill.core.losses.grpo import GRPOConfig, GRPOLoss  # noqa: E402
from rl_distill.core.losses.kl_kd import BETA_SCHEDULES, KLKDConfig, KLKDLoss  # noqa: E402
from rl_distill.core.losses.rlad import ANCHORS, TEACHER_CLAMPS, RLADConfig, RLADLoss  # noqa: E402
from rl_distill.core.losses.sft import SFTConfig, SFTLoss  # noqa: E402

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
