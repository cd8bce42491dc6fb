"""The optimizer: decay on matrices only, and fused AdamW gives the same steps as torch's default path."""

from __future__ import annotations

import torch

from rl_distill.engine.config import OptimizerConfig
from rl_distill.engine.optim import build_optimizer
from rl_distill.models.factory import build_model

from .conftest import STUDENT


def _steps(model, cfg, steps=5):
    opt = build_optimizer(model, cfg)
    torch.manual_seed(0)
    for _ in range(steps):
        x = torch.randint(3, 20, (4, 9))
        model(input_ids=x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return opt


def test_weight_decay_on_matrices_only(tokenizer):
    opt = build_optimizer(build_model(STUDENT, tokenizer), OptimizerConfig(weight_decay=0.1))
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.dim() >= 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.dim() == 1 for p in plain["params"])


def test_fused_adamw_matches_the_default_path(tokenizer):
    default, fused = build_model(STUDENT, tokenizer), build_model(STUDENT, tokenizer)
    start = [p.detach().clone() for p in default.parameters()]
    cfg = {"lr": 1e-2, "weight_decay": 0.1}
    opt = _steps(fused, OptimizerConfig(**cfg, fused=True))
    _steps(default, OptimizerConfig(**cfg))
    assert opt.param_groups[0]["fused"] is True
    for p, q in zip(default.parameters(), fused.parameters()):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=1e-5)
    assert any(not torch.equal(p, p0) for p, p0 in zip(fused.parameters(), start))  # it moved
