"""The optimizer: AdamW with weight decay on weight matrices only.

One job: build the optimizer from :class:`~rl_distill.engine.config.OptimizerConfig`. Norm gains, biases and other
1-D parameters are not decayed (decaying a norm's gain towards 0 only hurts).
"""

from __future__ import annotations

import torch

from rl_distill.engine.config import OptimizerConfig


def build_optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                             fused=cfg.fused)
