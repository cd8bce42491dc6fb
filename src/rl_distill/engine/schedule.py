"""Learning-rate schedule: linear warmup, then cosine / linear / constant decay, one tick per training step.

One job: the multiplier on the base learning rate at training step ``s`` (0-based: the factor used by step s's
updates). Warmup ramps ``(s + 1) / warmup_steps`` so the first step already learns; decay runs from the end of
warmup to the last step (``total_steps - 1``), ending at ``min_lr_ratio``.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from rl_distill.engine.config import ScheduleConfig


def lr_factor(step: int, total_steps: int, cfg: ScheduleConfig) -> float:
    """Multiplier on the base lr for 0-based training step ``step`` of ``total_steps``.

    >>> cfg = ScheduleConfig(warmup_steps=2, decay="linear", min_lr_ratio=0.0)
    >>> [round(lr_factor(s, 5, cfg), 3) for s in range(5)]  # warmup 1/2, 2/2; then (4-s)/(4-2) from s=2
    [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.decay == "constant":
        return 1.0
    span = max(1, total_steps - 1 - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if cfg.decay == "cosine" else 1.0 - progress
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * shape


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, cfg: ScheduleConfig) -> LambdaLR:
    """A ``LambdaLR`` to ``step()`` once per training step (its state is checkpointed with the run)."""
    return LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, cfg))
