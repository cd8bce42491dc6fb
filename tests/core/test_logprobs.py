"""Chunked sampled-token log-probs and entropy: exact against the naive full log-softmax, fp32 and bf16."""

from __future__ import annotations

import pytest
import torch

from rl_distill.core.logprobs import token_entropy, token_logprobs


def _inputs(dtype, n=3, t=5, v=17, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(n, t, v, generator=gen)).to(dtype).requires_grad_()
    ids = torch.randint(0, v, (n, t), generator=gen)
    return logits, ids


def _naive(logits, ids):
    return torch.log_softmax(logits.float(), -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("chunk_size", [1, 4, 15, None])
def test_token_logprobs_exact(dtype, chunk_size):
    logits, ids = _inputs(dtype)
    weights = torch.randn(3, 5)
    out = token_logprobs(logits, ids, chunk_size=chunk_size)
    assert out.dtype == torch.float32 and out.shape == (3, 5)
    (out * weights).sum().backward()
    grad = logits.grad.clone()
    logits.grad = None
    ref = _naive(logits, ids)
    (ref * weights).sum().backward()
    assert torch.equal(out, ref)  # each chunk makes the very same log_softmax call
    assert grad.dtype == dtype
    tol = {"rtol": 1e-6, "atol": 1e-7} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 1e-2}
    torch.testing.assert_close(grad, logits.grad, **tol)


@pytest.mark.parametrize("chunk_size", [2, None])
def test_token_entropy_matches_naive(chunk_size):
    logits, _ = _inputs(torch.float32, seed=1)
    out = token_entropy(logits, chunk_size)
    out.sum().backward()
    grad = logits.grad.clone()
    logits.grad = None
    logp = torch.log_softmax(logits, -1)
    ref = -(logp.exp() * logp).sum(-1)
    ref.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grad, logits.grad)


def test_entropy_hand_computed_and_masked_vocab():
    # Uniform over 4 tokens: H = log 4 = 1.386294; a -inf logit is a zero-probability token, not a NaN.
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0, float("-inf")]]], requires_grad=True)
    out = token_entropy(logits)
    assert out.item() == pytest.approx(1.3862944)
    out.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_gradcheck_fp64():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    ids = torch.randint(0, 7, (2, 3), generator=gen)
    assert torch.autograd.gradcheck(lambda x: token_logprobs(x, ids, chunk_size=4), (logits,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda x: token_entropy(x, chunk_size=4), (logits,), fast_mode=True)


def test_hand_computed_value():
    # logits (0, log 3) -> probabilities (1/4, 3/4): log-prob of token 1 = log 0.75 = -0.287682
    logits = torch.tensor([[[0.0, torch.log(torch.tensor(3.0)).item()]]])
    assert token_logprobs(logits, torch.tensor([[1]])).item() == pytest.approx(-0.2876821)


def test_empty_batch():
    out = token_logprobs(torch.zeros(0, 4, 9, requires_grad=True), torch.zeros(0, 4, dtype=torch.long))
    assert out.shape == (0, 4)


def test_validation():
    logits, ids = _inputs(torch.float32)
    with pytest.raises(ValueError, match=r"ids must be an integer tensor of shape \(3, 5\)"):
        token_logprobs(logits, ids[:, :4])
    with pytest.raises(ValueError, match="chunk_size=0"):
        token_logprobs(logits, ids, chunk_size=0)


@pytest.mark.parametrize("chunk_size", [2, 7])
def test_non_contiguous_logits_view(chunk_size):
    # A model's response logits are a slice [:, P - 1:-1] of its output: chunks index the view, no whole copy.
    full, ids = _inputs(torch.float32, n=3, t=9)
    view = full[:, 2:7]  # [3, 5, 17], not contiguous
    assert not view.is_contiguous()
    out = token_logprobs(view, ids[:, 2:7], chunk_size=chunk_size)
    out.sum().backward()
    grad = full.grad.clone()
    full.grad = None
    ref = _naive(view, ids[:, 2:7])
    ref.sum().backward()
    assert torch.equal(out, ref)
    torch.testing.assert_close(grad, full.grad)


def test_other_ranks():
    logits, ids = _inputs(torch.float32)
    expected = _naive(logits, ids)
    flat = token_logprobs(logits.reshape(-1, 17), ids.reshape(-1), chunk_size=4)  # [R, V] and [R]
    assert torch.equal(flat, expected.reshape(-1))
    four = token_logprobs(logits.reshape(3, 5, 1, 17), ids.reshape(3, 5, 1), chunk_size=4)  # [N, T, 1, V]
    assert torch.equal(four, expected.reshape(3, 5, 1))
