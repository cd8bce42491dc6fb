"""Score responses with a causal LM: per-token log-probs (and logits) of the response part of ``prompt + response``.

One job: the forward pass every method shares. Rows are laid out as ``[left-padded prompt | right-padded response]``
with the response starting at column ``response_start`` (= P) for every row, so the logits that predict response
token t sit at column ``P - 1 + t``. Position ids follow the attention mask exactly as ``generate`` builds them
(``cumsum(mask) - 1``), so a scored log-prob equals the log-prob the sampler used. Only the last ``T + 1`` positions
go through the LM head (``logits_to_keep``) when the model supports it: the prompt's logits are never materialised.

The function respects the caller's grad mode: the trainer calls it with grad for the policy update and under
``torch.no_grad()`` for old-policy, reference and teacher scoring.
Shapes: N rows, L = P + T columns, V vocabulary.
"""

from __future__ import annotations

import inspect
from functools import lru_cache

import torch
from torch import Tensor

from rl_distill.core.logprobs import token_logprobs

#: Rows per forward pass when scoring length-bucketed responses (small enough to bucket, large enough for GEMMs).
BUCKET_ROWS = 32


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """[N, L] positions that skip left padding, as ``generate`` computes them (pads get position 0)."""
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 0)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model


@lru_cache(maxsize=32)
def _accepts_logits_to_keep(model_cls: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_cls.forward).parameters


def response_logits(model: torch.nn.Module, input_ids: Tensor, attention_mask: Tensor, response_start: int,
                    temperature: float = 1.0, vocab_size: int | None = None) -> Tensor:
    """[N, T, V] logits predicting the response tokens ``input_ids[:, response_start:]`` (divided by temperature).

    ``vocab_size`` slices padded embedding rows away (teacher and student may pad their vocabularies differently).
    """
    n_rows, length = input_ids.shape
    t_resp = length - response_start
    if t_resp <= 0 or response_start < 1:
        raise ValueError(f"response_start={response_start} must be in [1, {length - 1}] for inputs of length {length}")
    kwargs = {"use_cache": False, "position_ids": position_ids_from_mask(attention_mask)}
    keep = _accepts_logits_to_keep(type(_unwrap(model)))
    if keep:
        kwargs["logits_to_keep"] = t_resp + 1
    logits = model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
    logits = logits[:, -(t_resp + 1):-1] if keep else logits[:, response_start - 1:-1]  # [N, T, V]
    if vocab_size is not None:
        logits = logits[..., :vocab_size]
    if temperature != 1.0:
        logits = logits / temperature
    return logits


def _length_buckets(lengths: Tensor, rows: int) -> list[Tensor]:
    order = torch.argsort(lengths, descending=True, stable=True)
    return [order[lo:lo + rows] for lo in range(0, order.numel(), rows)]


def score_responses(model: torch.nn.Module, input_ids: Tensor, attention_mask: Tensor, response_start: int,
                    response_mask: Tensor, *, temperature: float = 1.0, chunk_size: int | None = None,
                    rows_per_forward: int | None = None, with_logits: bool = False,
                    vocab_size: int | None = None) -> tuple[Tensor, Tensor | None]:
    """``(logprobs [N, T] fp32, logits [N, T, V] or None)`` of the responses, zero where ``response_mask`` is 0.

    Length-bucketed: rows are sorted by response length and scored ``rows_per_forward`` at a time (default
    :data:`BUCKET_ROWS`), each bucket cut to its own longest response and shortest left padding, so padding after
    short responses is never run through the model. The values equal :func:`sequence_logprobs` on the full layout
    (a causal model's position t does not see later columns; left padding is masked and position ids skip it).
    """
    n_rows, length = input_ids.shape
    lengths = response_mask.sum(dim=1)
    logprobs = torch.zeros(n_rows, length - response_start, dtype=torch.float32, device=input_ids.device)
    all_logits = None
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    for index in _length_buckets(lengths, rows_per_forward or BUCKET_ROWS):
        width = max(1, int(lengths[index].max().item()))
        prompt_mask = attention_mask[index, :response_start]
        used = (prompt_mask.sum(dim=0) > 0).nonzero()
        first = min(int(used[0].item()) if used.numel() else 0, response_start - 1)
        ids = input_ids[index, first:response_start + width]
        logits = response_logits(model, ids, attention_mask[index, first:response_start + width],
                                 response_start - first, temperature, vocab_size)  # [n, width, V]
        logprobs[index, :width] = token_logprobs(logits, ids[:, response_start - first:], **kwargs)
        if with_logits:
            if all_logits is None:
                all_logits = logits.new_zeros(n_rows, length - response_start, logits.shape[-1])
            all_logits[index, :width] = logits
    return logprobs * response_mask, all_logits


def sequence_logprobs(model: torch.nn.Module, input_ids: Tensor, attention_mask: Tensor, response_start: int, *,
                      temperature: float = 1.0, chunk_size: int | None = None,
                      micro_batch_size: int | None = None, response_mask: Tensor | None = None) -> Tensor:
    """[N, T] fp32 log pi(y_t | x, y_<t) of the response tokens, ``T = L - response_start``.

    ``micro_batch_size`` bounds memory by scoring that many rows per forward pass (None: all at once);
    ``chunk_size`` is passed to :func:`rl_distill.core.logprobs.token_logprobs` (rows per log-softmax chunk).
    Without ``response_mask``, positions after a response's end carry whatever the model says; with it, the
    length-bucketed :func:`score_responses` runs instead (faster for ragged responses; zero at masked positions).
    """
    if response_mask is not None:
        return score_responses(model, input_ids, attention_mask, response_start, response_mask,
                               temperature=temperature, chunk_size=chunk_size, rows_per_forward=micro_batch_size)[0]
    targets = input_ids[:, response_start:]
    step = micro_batch_size or input_ids.shape[0]
    parts = []
    for lo in range(0, input_ids.shape[0], step):
        hi = lo + step
        logits = response_logits(model, input_ids[lo:hi], attention_mask[lo:hi], response_start, temperature)
        kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
        parts.append(token_logprobs(logits, targets[lo:hi], **kwargs))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
