"""Compiled kernels of the core math; today one: the clipped-ratio surrogate shared by grpo, kl_kd and rlad."""

from rl_distill.core.kernels.ratio import (
    LOG_RATIO_LIMIT,
    METRIC_NAMES,
    SurrogateOut,
    clipped_surrogate,
    clipped_surrogate_eager,
    compiled_kernel,
)

__all__ = [
    "LOG_RATIO_LIMIT",
    "METRIC_NAMES",
    "SurrogateOut",
    "clipped_surrogate",
    "clipped_surrogate_eager",
    "compiled_kernel",
]
