"""Per-token log-probs of the sampled tokens, and per-token entropy, from logits without a full [N, T, V] fp32 copy.

One job: the two vocabulary reductions every policy-gradient step needs, computed in chunks of positions
(:mod:`rl_distill.core.chunked`) so that peak extra memory is ``O(chunk_size * V)`` instead of ``O(N * T * V)``, in
forward and backward, also for non-contiguous logits (no whole-tensor copy). Values match the naive
``torch.log_softmax(logits.float(), -1).gather(-1, ids)`` exactly (each chunk makes that very call) for fp32 and
bf16 logits; the result is fp32 (fp64 for fp64 logits).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rl_distill.core.chunked import chunked_reduce, log_softmax_rows


class _SampledLogprob:
    """log p(id) = log_softmax(x)[id]; d/dx_v = grad * (1[v = id] - p_v)."""

    def forward(self, logits: Tensor, ids: Tensor) -> Tensor:
        return log_softmax_rows(logits).gather(-1, ids.unsqueeze(-1)).squeeze(-1)

    def backward(self, grad: Tensor, logits: Tensor, ids: Tensor, needs: tuple[bool, ...]):
        grad = grad.to(torch.promote_types(grad.dtype, torch.float32)).unsqueeze(-1)  # [r, 1]
        grad_logits = log_softmax_rows(logits).exp_().mul_(-grad)  # -p * grad, in place: one [r, V] buffer
        grad_logits.scatter_add_(-1, ids.unsqueeze(-1), grad)
        return grad_logits, None


class _Entropy:
    """H = -sum_v p_v log p_v; dH/dx_v = -p_v (log p_v + H). Zero-probability entries (-inf logits) contribute 0."""

    def forward(self, logits: Tensor) -> Tensor:
        logp = log_softmax_rows(logits)
        p = torch.exp(logp)
        return -torch.where(p > 0, p * logp, 0.0).sum(-1)

    def backward(self, grad: Tensor, logits: Tensor, needs: tuple[bool, ...]):
        logp = log_softmax_rows(logits)
        p = torch.exp(logp)
        entropy = -torch.where(p > 0, p * logp, 0.0).sum(-1, keepdim=True)  # [r, 1]
        grad_logits = torch.where(p > 0, -p * (logp + entropy), 0.0) * grad.unsqueeze(-1)
        return (grad_logits,)


def _check_logits(logits: Tensor, name: str) -> None:
    if logits.dim() < 2 or not logits.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor [..., V] (e.g. [N, T, V]), got {tuple(logits.shape)} "
                         f"{logits.dtype}.")


def token_logprobs(logits: Tensor, ids: Tensor, chunk_size: int | None = None) -> Tensor:
    """Log-probs of ``ids`` under ``logits``: [N, T, V] and [N, T] -> [N, T] (fp32; any leading dims work).

    Args:
        logits: [N, T, V] logits whose position t scores token ids[n, t] (already shifted by the caller).
        ids: [N, T] integer token ids.
        chunk_size: positions per chunk; peak extra memory is about ``2 * chunk_size * V * 4`` bytes for
            bf16 logits (fp32 copy + its log-softmax). None: as many rows as fit 8M elements.
    """
    _check_logits(logits, "logits")
    if tuple(ids.shape) != tuple(logits.shape[:-1]) or ids.is_floating_point():
        raise ValueError(f"ids must be an integer tensor of shape {tuple(logits.shape[:-1])} (logits without V), "
                         f"got {tuple(ids.shape)} {ids.dtype}.")
    return chunked_reduce(_SampledLogprob(), logits, ids.long(), chunk_size=chunk_size)


def token_entropy(logits: Tensor, chunk_size: int | None = None) -> Tensor:
    """Entropy of the next-token distribution at every position: [N, T, V] -> [N, T] (fp32), chunked like
    :func:`token_logprobs` and differentiable (for an entropy bonus); call under ``torch.no_grad()`` for a metric."""
    _check_logits(logits, "logits")
    return chunked_reduce(_Entropy(), logits, chunk_size=chunk_size)
