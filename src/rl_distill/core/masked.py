"""Masked reductions and the named loss-aggregation modes.

One job: reduce a per-token tensor [N, T] to a scalar over the real response tokens, with no NaN when rows (or the
whole batch) are fully masked. Masking uses ``torch.where`` rather than multiplication, so garbage (even inf/NaN)
at padded positions never reaches the result or the gradient of the real positions.

Aggregation modes (verl's vocabulary, so runs compare across codebases), selected by name from
:data:`AGGREGATIONS`:

- ``seq-mean-token-mean`` (default): mean over each response's tokens, then over responses; GRPO as written in
  DeepSeekMath (arXiv 2402.03300, Eq. 3: 1/G sum_i 1/|o_i| sum_t).
- ``token-mean``: sum over all tokens of the batch / number of tokens; DAPO (arXiv 2503.14476, Sec. 3.3).
- ``seq-mean-token-sum-norm``: sum over all tokens / (number of responses * L); Dr.GRPO (arXiv 2503.20783,
  Sec. 3.2), which removes the 1/|o_i| length bias with a constant L (pass ``norm_length``, e.g. the generation
  budget; when omitted, the longest response of the batch is used so that padding never changes the value).

[choice] A row with no real token is batch padding, not a response: it is left out of every "number of responses"
denominator; an all-masked batch aggregates to 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rl_distill.core.types import as_bool_mask
from rl_distill.registry import Registry

Aggregation = Callable[[Tensor, Tensor, int | None], Tensor]
AGGREGATIONS: Registry[Aggregation] = Registry("loss aggregation mode")
DEFAULT_AGG = "seq-mean-token-mean"


def masked_sum(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Sum of ``values`` where ``mask`` is nonzero (over ``dim``, or everything when None)."""
    kept = torch.where(as_bool_mask(mask), values, torch.zeros((), dtype=values.dtype, device=values.device))
    return kept.sum() if dim is None else kept.sum(dim)


def masked_count(mask: Tensor, dim: int | None = None) -> Tensor:
    """Number of real tokens (over ``dim``, or everything when None), as an integer tensor."""
    mask = as_bool_mask(mask)
    return mask.sum() if dim is None else mask.sum(dim)


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``values`` over the real tokens; 0 (not NaN) where there is none."""
    count = masked_count(mask, dim).clamp(min=1).to(values.dtype)
    return masked_sum(values, mask, dim) / count


@AGGREGATIONS.register("seq-mean-token-mean")
def _seq_mean_token_mean(values: Tensor, mask: Tensor, norm_length: int | None = None) -> Tensor:
    per_response = masked_mean(values, mask, dim=-1)  # [N]
    is_response = as_bool_mask(mask).any(dim=-1)  # [N]; all-masked rows are padding
    return masked_mean(per_response, is_response)


@AGGREGATIONS.register("token-mean")
def _token_mean(values: Tensor, mask: Tensor, norm_length: int | None = None) -> Tensor:
    return masked_mean(values, mask)


@AGGREGATIONS.register("seq-mean-token-sum-norm")
def _seq_mean_token_sum_norm(values: Tensor, mask: Tensor, norm_length: int | None = None) -> Tensor:
    lengths = masked_count(mask, dim=-1)  # [N]
    num_responses = (lengths > 0).sum().clamp(min=1)
    # Dr.GRPO's L is a constant; the batch's longest response is the padding-invariant fallback.
    length = lengths.max().clamp(min=1) if norm_length is None else lengths.new_tensor(norm_length)
    return masked_sum(values, mask) / (num_responses * length).to(values.dtype)


def aggregate(values: Tensor, mask: Tensor, mode: str = DEFAULT_AGG, norm_length: int | None = None) -> Tensor:
    """Reduce per-token ``values`` [N, T] over the real tokens of ``mask`` [N, T] to a scalar, by named ``mode``.

    ``norm_length`` is Dr.GRPO's constant L and is read only by ``seq-mean-token-sum-norm``. An unknown ``mode``
    raises :class:`~rl_distill.registry.UnknownNameError` listing the valid ones.
    """
    if values.shape != mask.shape:
        raise ValueError(f"values {tuple(values.shape)} and mask {tuple(mask.shape)} must have the same shape.")
    return AGGREGATIONS.get(mode)(values, mask, norm_length)
