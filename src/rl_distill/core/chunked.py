"""Chunked reductions over the vocabulary, recomputed chunk by chunk in backward.

One job: evaluate a per-position reduction ``[..., V] -> [...]`` (sampled-token log-prob, entropy, full-vocabulary
KL) so that at most ``chunk_size`` positions of fp32 ``[chunk, V]`` temporaries exist at any time, in forward *and*
in backward. A plain loop over chunks is not enough under autograd: every chunk's ``log_softmax`` output would be
saved for backward, rebuilding the full ``[N, T, V]`` fp32 tensor. Here forward saves only its inputs (already alive
as the model's logits) and backward recomputes each chunk's softmax before writing that chunk's gradient.

Inputs are indexed in blocks of their leading dims ([R] or [N, T]) and never reshaped, so a non-contiguous view
(e.g. ``logits[:, P - 1:-1]``, the response part of a model's output) is not copied as a whole.
Half-precision inputs are upcast per chunk to fp32 (the "compute dtype"); fp64 stays fp64 (for gradcheck).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

CHUNK_ELEMENTS = 1 << 23  # default budget: 8M elements of fp32 = 32 MiB per temporary
Block = tuple[slice, ...]


class RowReduction(Protocol):
    """A reduction over the last dim of position-aligned inputs, with its hand-written backward."""

    def forward(self, *rows: Tensor) -> Tensor:
        """Blocks ``[b..., V]`` (or ``[b...]`` for ids) of every input -> ``[b...]`` in the compute dtype."""
        ...

    def backward(self, grad: Tensor, *rows: Tensor, needs: tuple[bool, ...]) -> tuple[Tensor | None, ...]:
        """``grad [b...]`` -> one gradient (or None) per input for the same block; ``needs[i]``: input i wants one."""
        ...


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 for half/bf16/fp32 inputs, fp64 for fp64."""
    return torch.promote_types(dtype, torch.float32)


def log_softmax_rows(logits: Tensor) -> Tensor:
    """``log_softmax`` over the last dim in the compute dtype (the same call the naive reference makes)."""
    return torch.log_softmax(logits.to(compute_dtype(logits.dtype)), dim=-1)


def resolve_chunk_rows(chunk_size: int | None, vocab: int) -> int:
    """Positions per chunk: ``chunk_size`` when given (>= 1), else as many as fit :data:`CHUNK_ELEMENTS`."""
    if chunk_size is None:
        return max(1, CHUNK_ELEMENTS // max(vocab, 1))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} is invalid; it must be an integer >= 1 (positions per chunk).")
    return chunk_size


def blocks(lead_shape: tuple[int, ...], chunk_rows: int) -> list[Block]:
    """Index blocks covering ``lead_shape`` ([R] or [N, T]) with at most ``chunk_rows`` positions each."""
    if len(lead_shape) == 1:
        return [(slice(s, s + chunk_rows),) for s in range(0, lead_shape[0], chunk_rows)] or [(slice(0, 0),)]
    n, t = lead_shape
    if n == 0 or t == 0:
        return [(slice(None), slice(None))]
    if t >= chunk_rows:  # long responses: split each one along T
        return [(slice(i, i + 1), slice(s, s + chunk_rows)) for i in range(n) for s in range(0, t, chunk_rows)]
    per = chunk_rows // t  # short responses: several whole rows per chunk
    return [(slice(i, i + per), slice(None)) for i in range(0, n, per)]


class _Chunked(torch.autograd.Function):
    """Autograd wrapper: forward and backward loop over the same blocks of every input."""

    @staticmethod
    def forward(ctx, op: RowReduction, chunk_rows: int, *inputs: Tensor) -> Tensor:  # type: ignore[override]
        lead_shape = tuple(inputs[0].shape[:-1])
        out: Tensor | None = None
        for block in blocks(lead_shape, chunk_rows):
            piece = op.forward(*(t[block] for t in inputs))
            if out is None:
                out = piece.new_empty(lead_shape)
            out[block] = piece
        ctx.op, ctx.chunk_rows = op, chunk_rows
        ctx.save_for_backward(*inputs)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        inputs = ctx.saved_tensors
        needs = tuple(ctx.needs_input_grad[2:])
        grads: list[Tensor | None] = [torch.empty_like(t) if need else None for t, need in zip(inputs, needs)]
        for block in blocks(tuple(inputs[0].shape[:-1]), ctx.chunk_rows):
            chunk_grads = ctx.op.backward(grad[block], *(t[block] for t in inputs), needs=needs)
            for buffer, piece in zip(grads, chunk_grads):
                if buffer is not None and piece is not None:
                    buffer[block] = piece
        return (None, None, *grads)


def chunked_reduce(op: RowReduction, logits: Tensor, *others: Tensor, chunk_size: int | None = None) -> Tensor:
    """Apply ``op`` to ``logits [..., V]`` and position-aligned ``others`` in chunks -> ``[...]``.

    Leading dims [R] and [N, T] are chunked in place; more leading dims are first reshaped to [R].
    """
    if logits.dim() > 3:
        lead = logits.shape[:-1]
        logits = logits.reshape(-1, logits.shape[-1])
        others = tuple(o.reshape(-1, *o.shape[len(lead):]) for o in others)
        return chunked_reduce(op, logits, *others, chunk_size=chunk_size).reshape(lead)
    chunk_rows = resolve_chunk_rows(chunk_size, logits.shape[-1])
    return _Chunked.apply(op, chunk_rows, logits, *others)
