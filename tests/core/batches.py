"""Builders for the core tests: random policy batches with padding, fully masked rows and length-1 rows."""

from __future__ import annotations

import torch

from rl_distill.core.types import PolicyBatch


def random_batch(n: int = 6, t: int = 7, *, seed: int = 0, dtype: torch.dtype = torch.float32, spread: float = 0.3,
                 with_teacher: bool = True, with_ref: bool = True, empty_row: bool = True,
                 short_row: bool = True, per_token_adv: bool = False, progress: float = 0.5) -> PolicyBatch:
    """A batch whose log-prob differences straddle the clip range (some tokens clip on each side).

    Row 0 is fully masked (``empty_row``), row 1 has a single token (``short_row``); the other rows have random
    right padding. ``logprobs`` is a leaf requiring grad.
    """
    gen = torch.Generator().manual_seed(seed)
    old = -torch.rand(n, t, generator=gen) * 3 - 0.05  # log-probs in (-3.05, -0.05)
    student = old + spread * torch.randn(n, t, generator=gen)
    teacher = old + 0.8 * torch.randn(n, t, generator=gen)
    ref = old + 0.2 * torch.randn(n, t, generator=gen)
    lengths = torch.randint(1, t + 1, (n,), generator=gen)
    if empty_row and n > 0:
        lengths[0] = 0
    if short_row and n > 1:
        lengths[1] = 1
    mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)  # [N, T] bool, right padded
    advantages = torch.randn(n, t, generator=gen) if per_token_adv else torch.randn(n, generator=gen)
    return PolicyBatch(
        logprobs=student.to(dtype).requires_grad_(),
        old_logprobs=old.to(dtype),
        advantages=advantages,
        response_mask=mask,
        ref_logprobs=ref.to(dtype) if with_ref else None,
        teacher_logprobs=teacher.to(dtype) if with_teacher else None,
        progress=progress,
    )


def with_logprobs(batch: PolicyBatch, logprobs: torch.Tensor) -> PolicyBatch:
    """A copy of ``batch`` with a fresh leaf ``logprobs`` (so gradients of two runs can be compared)."""
    fields = {k: getattr(batch, k) for k in batch.__dataclass_fields__}
    fields["logprobs"] = logprobs.detach().clone().requires_grad_()
    return PolicyBatch(**fields)
