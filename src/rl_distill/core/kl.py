"""KL divergence estimators, per token, with the direction in the argument names.

One job: estimate KL(p || q) at every sampled position, where the tokens were sampled from **p**. With
``d = logprobs_p - logprobs_q`` = log(p / q) at the sampled token (Schulman, "Approximating KL divergence", 2020):

- ``k1 = d``                    unbiased for KL(p || q), high variance, can be negative;
- ``k2 = d^2 / 2``              biased, low variance; its gradient (samples held fixed) is ``d * grad log p``,
                                which in expectation is the exact gradient of KL(p || q) (KDRL, arXiv 2506.02208);
- ``k3 = exp(-d) + d - 1``      unbiased for KL(p || q), always >= 0 (DeepSeekMath, arXiv 2402.03300, Eq. 4).

Pitfall, direction: on student rollouts, ``kl_estimate(logprobs_p=student, logprobs_q=teacher)`` is the **reverse**
KL(student || teacher) (mode seeking; KDRL's choice); ``kl_estimate(student, ref)`` is GRPO's KL(pi_S || pi_ref).
The forward KL(teacher || student) cannot be estimated from student samples by these formulas; it needs both sets
of logits (:func:`full_vocab_kl` with the arguments swapped).

:func:`full_vocab_kl` computes the exact per-position KL(p || q) over the whole vocabulary from two sets of logits,
chunked over rows like :mod:`rl_distill.core.logprobs`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rl_distill.core.chunked import chunked_reduce, log_softmax_rows
from rl_distill.registry import Registry

KLEstimator = Callable[[Tensor], Tensor]
KL_ESTIMATORS: Registry[KLEstimator] = Registry("KL estimator")
K3_LOG_RATIO_LIMIT = 20.0  # exp(20) ~ 4.9e8: k3 stays finite for any finite log-probs


@KL_ESTIMATORS.register("k1")
def _k1(log_ratio: Tensor) -> Tensor:
    return log_ratio


@KL_ESTIMATORS.register("k2")
def _k2(log_ratio: Tensor) -> Tensor:
    return 0.5 * log_ratio.square()


@KL_ESTIMATORS.register("k3")
def _k3(log_ratio: Tensor) -> Tensor:
    # exp(-d) - 1 + d with expm1 for accuracy near d = 0; d clamped so exp never overflows (gradient 0 beyond).
    log_ratio = log_ratio.clamp(-K3_LOG_RATIO_LIMIT, K3_LOG_RATIO_LIMIT)
    return torch.expm1(-log_ratio) + log_ratio


def kl_estimate(logprobs_p: Tensor, logprobs_q: Tensor, estimator: str = "k3") -> Tensor:
    """Per-token estimate of KL(p || q) from tokens sampled from p: [N, T], [N, T] -> [N, T] (fp32 or wider).

    Unknown ``estimator`` raises :class:`~rl_distill.registry.UnknownNameError` listing k1, k2, k3.
    """
    if logprobs_p.shape != logprobs_q.shape:
        raise ValueError(f"logprobs_p {tuple(logprobs_p.shape)} and logprobs_q {tuple(logprobs_q.shape)} must have "
                         f"the same shape.")
    fn = KL_ESTIMATORS.get(estimator)
    dtype = torch.promote_types(torch.promote_types(logprobs_p.dtype, logprobs_q.dtype), torch.float32)
    return fn(logprobs_p.to(dtype) - logprobs_q.to(dtype))


class _FullVocabKL:
    """KL(p || q) = sum_v p_v (log p_v - log q_v) per row.

    Gradients: d/dx_p[v] = p_v (log p_v - log q_v - KL); d/dx_q[v] = q_v - p_v.
    """

    def forward(self, logits_p: Tensor, logits_q: Tensor) -> Tensor:
        logp, logq = log_softmax_rows(logits_p), log_softmax_rows(logits_q)
        p = torch.exp(logp)
        return torch.where(p > 0, p * (logp - logq), 0.0).sum(-1)

    def backward(self, grad: Tensor, logits_p: Tensor, logits_q: Tensor, needs: tuple[bool, ...]):
        logp, logq = log_softmax_rows(logits_p), log_softmax_rows(logits_q)
        p = torch.exp(logp)
        grad = grad.unsqueeze(-1)  # [r, 1]
        grad_p = grad_q = None
        if needs[0]:
            pointwise = torch.where(p > 0, p * (logp - logq), 0.0)
            kl = pointwise.sum(-1, keepdim=True)
            grad_p = (pointwise - p * kl) * grad
        if needs[1]:
            grad_q = (torch.exp(logq) - p) * grad
        return grad_p, grad_q


def full_vocab_kl(logits_p: Tensor, logits_q: Tensor, chunk_size: int | None = None) -> Tensor:
    """Exact per-position KL(p || q) over the vocabulary: [N, T, V] x2 -> [N, T] (fp32), chunked over positions.

    For KL-KD's optional full-vocabulary reverse KL pass ``logits_p = student_logits``, ``logits_q = teacher_logits``;
    for its forward KL (``direction: forward``, GKD) the other way round. Gradients flow to either argument.
    """
    if logits_p.shape != logits_q.shape or logits_p.dim() < 2:
        raise ValueError(f"logits_p {tuple(logits_p.shape)} and logits_q {tuple(logits_q.shape)} must both be "
                         f"[..., V] with the same shape (shared vocabulary).")
    return chunked_reduce(_FullVocabKL(), logits_p, logits_q, chunk_size=chunk_size)
