"""R-TAP: recursive think-answer rollouts with a confidence generator (Lee, Chee, Ro, arXiv 2603.02099).

Modules: :mod:`~rl_distill.rtap.trajectory` (cycle-by-cycle rollouts, M, truncation), :mod:`~rl_distill.rtap.confidence`
(C_phi), :mod:`~rl_distill.rtap.calibration` (AUROC, ECE), :mod:`~rl_distill.rtap.stage1` (C_phi's training data and
fit), :mod:`~rl_distill.rtap.rewards` (R_increase, R_final, R_format, R_answer, R_length), :mod:`~rl_distill.rtap.step`
(the engine plug-ins), :mod:`~rl_distill.rtap.config` (:class:`RTAPConfig`) and :mod:`~rl_distill.rtap.train`
(:func:`train_rtap`, the single entry point).
"""

from rl_distill.rtap.confidence import ConfidenceGenerator
from rl_distill.rtap.config import CycleConfig, RTAPConfig
from rl_distill.rtap.rewards import RTAPRewardConfig, RTAPRewards, rtap_rewards
from rl_distill.rtap.stage1 import ConfidenceConfig
from rl_distill.rtap.train import RTAPResult, train_rtap

__all__ = [
    "ConfidenceConfig",
    "ConfidenceGenerator",
    "CycleConfig",
    "RTAPConfig",
    "RTAPResult",
    "RTAPRewardConfig",
    "RTAPRewards",
    "rtap_rewards",
    "train_rtap",
]
