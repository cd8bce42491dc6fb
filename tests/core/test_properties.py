"""Property tests (hypothesis): losses, KL estimators and the kernel stay finite for extreme log-probs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rl_distill.core.kl import KL_ESTIMATORS, kl_estimate
from rl_distill.core.losses import build_policy_loss
from rl_distill.core.types import PolicyBatch

# Log-probs from "certain" (0) to absurdly unlikely (-1e4; fp32 log_softmax of finite logits stays above ~-1e38).
LOGPROB = st.floats(min_value=-1e4, max_value=0.0, allow_nan=False, width=32)
ADVANTAGE = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, width=32)


@st.composite
def batches(draw):
    n = draw(st.integers(1, 4))
    t = draw(st.integers(1, 5))

    def grid(elements):
        return torch.tensor(draw(st.lists(st.lists(elements, min_size=t, max_size=t), min_size=n, max_size=n)))

    mask = grid(st.booleans())
    return PolicyBatch(logprobs=grid(LOGPROB).requires_grad_(), old_logprobs=grid(LOGPROB),
                       advantages=torch.tensor(draw(st.lists(ADVANTAGE, min_size=n, max_size=n))),
                       response_mask=mask, ref_logprobs=grid(LOGPROB), teacher_logprobs=grid(LOGPROB),
                       progress=draw(st.floats(0.0, 1.0)))


LOSS_CONFIGS = [
    ("grpo", {"beta": 0.04, "kl_estimator": "k3"}),
    ("grpo", {"beta": 0.04, "kl_estimator": "k2", "dual_clip": 3.0, "agg": "token-mean"}),
    ("kl_kd", {"kd_estimator": "k2", "agg": "seq-mean-token-sum-norm"}),
    ("kl_kd", {"kd_estimator": "k3"}),
    ("rlad", {"alpha": 0.5}),
    ("rlad", {"alpha": 0.0, "teacher_clamp": "none", "anchor": "arithmetic"}),
    ("rlad", {"alpha": 0.7, "teacher_clamp": "straight_through", "anchor": "geometric"}),
    ("sft", {}),
]


@pytest.mark.parametrize(("name", "config"), LOSS_CONFIGS)
@settings(max_examples=40, deadline=None)
@given(batch=batches())
def test_losses_finite_under_extreme_logprobs(name, config, batch):
    if name != "sft":
        config = {**config, "compile": False}  # same kernel body as compiled; keeps hypothesis fast
    out = build_policy_loss(name, config)(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert torch.isfinite(batch.logprobs.grad).all()
    for key, value in out.metrics.items():
        assert torch.isfinite(value), key


@pytest.mark.parametrize("estimator", KL_ESTIMATORS.names())
@settings(max_examples=60, deadline=None)
@given(p=st.lists(LOGPROB, min_size=1, max_size=8), q=st.lists(LOGPROB, min_size=1, max_size=8))
def test_kl_estimators_finite(estimator, p, q):
    size = min(len(p), len(q))
    logp = torch.tensor(p[:size], requires_grad=True)
    out = kl_estimate(logp, torch.tensor(q[:size]), estimator)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(logp.grad).all()
    if estimator != "k1":
        assert (out >= 0).all()
