"""KL estimators (hand-computed, direction explicit) and the exact chunked full-vocabulary KL."""

from __future__ import annotations

import math

import pytest
import torch

from rl_distill.core.kl import KL_ESTIMATORS, full_vocab_kl, kl_estimate
from rl_distill.registry import UnknownNameError

# d = log p - log q at the sampled tokens: 0.5 and -1.0
LOGP = torch.tensor([[-1.0, -2.0]])
LOGQ = torch.tensor([[-1.5, -1.0]])


@pytest.mark.parametrize(("name", "expected"), [
    ("k1", [0.5, -1.0]),  # d
    ("k2", [0.125, 0.5]),  # d^2 / 2
    ("k3", [math.exp(-0.5) + 0.5 - 1, math.exp(1.0) - 1.0 - 1]),  # exp(-d) + d - 1 = 0.106531, 0.718282
])
def test_estimators_hand_computed(name, expected):
    torch.testing.assert_close(kl_estimate(LOGP, LOGQ, name), torch.tensor([expected]))


def test_direction_is_in_the_argument_names():
    # KL(p || q) with d = log p - log q; swapping arguments flips the sign of k1.
    forward = kl_estimate(logprobs_p=LOGP, logprobs_q=LOGQ, estimator="k1")
    torch.testing.assert_close(kl_estimate(logprobs_p=LOGQ, logprobs_q=LOGP, estimator="k1"), -forward)


def test_k3_is_nonnegative_and_finite_for_extremes():
    logp = torch.tensor([0.0, -1e4, -1e30, 0.0])
    logq = torch.tensor([-1e4, 0.0, 0.0, -1e30])
    out = kl_estimate(logp, logq, "k3")
    assert torch.isfinite(out).all() and (out >= 0).all()


def test_estimator_expectations_match_exact_kl():
    # E_p[k1] = E_p[k3] = KL(p || q) on a 3-token vocabulary, by exact enumeration.
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.2, 0.2, 0.6])
    exact = (p * (p.log() - q.log())).sum()
    for name in ("k1", "k3"):
        torch.testing.assert_close((p * kl_estimate(p.log(), q.log(), name)).sum(), exact)


def test_unknown_estimator():
    with pytest.raises(UnknownNameError, match="k1, k2, k3"):
        kl_estimate(LOGP, LOGQ, "k4")


def _naive_kl(logits_p, logits_q):
    logp, logq = torch.log_softmax(logits_p.float(), -1), torch.log_softmax(logits_q.float(), -1)
    return (logp.exp() * (logp - logq)).sum(-1)


@pytest.mark.parametrize("chunk_size", [1, 3, None])
def test_full_vocab_kl_matches_naive_values_and_grads(chunk_size):
    gen = torch.Generator().manual_seed(0)
    lp = torch.randn(2, 5, 11, generator=gen, requires_grad=True)
    lq = torch.randn(2, 5, 11, generator=gen, requires_grad=True)
    weights = torch.randn(2, 5, generator=gen)
    out = full_vocab_kl(lp, lq, chunk_size)
    (out * weights).sum().backward()
    grads = lp.grad.clone(), lq.grad.clone()
    lp.grad = lq.grad = None
    ref = _naive_kl(lp, lq)
    (ref * weights).sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grads[0], lp.grad)
    torch.testing.assert_close(grads[1], lq.grad)


def test_full_vocab_kl_gradcheck_fp64():
    gen = torch.Generator().manual_seed(1)
    lp = torch.randn(2, 3, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    lq = torch.randn(2, 3, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: full_vocab_kl(a, b, chunk_size=4), (lp, lq), fast_mode=True)


def test_full_vocab_kl_shape_mismatch():
    with pytest.raises(ValueError, match="shared vocabulary"):
        full_vocab_kl(torch.zeros(2, 3, 5), torch.zeros(2, 3, 6))


def test_registry_names():
    assert KL_ESTIMATORS.names() == ["k1", "k2", "k3"]
