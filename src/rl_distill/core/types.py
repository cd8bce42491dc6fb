"""Typed containers passed between the training engine and the policy losses.

One job: say what a loss receives (:class:`PolicyBatch`, per-field shapes) and returns (:class:`LossOutput`), and
check that the per-token log-prob tensors of a batch agree in shape and dtype (:func:`check_same_layout`).
Shapes: B prompts, G samples per prompt, N = B*G responses, T response tokens, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


class BatchError(ValueError):
    """A batch handed to a loss is malformed (shape, dtype or a missing field); the message names it."""


@dataclass(frozen=True)
class PolicyBatch:
    """Everything a policy loss may read for one optimisation step.

    Attributes:
        logprobs: [N, T] log pi_S(y_t | x, y_<t) of the sampled tokens under the current student (requires grad).
        old_logprobs: [N, T] the same under pi_old, the policy that sampled the rollouts (no grad).
        advantages: [N] (one per response, broadcast over its tokens) or [N, T] (per token).
        response_mask: [N, T] bool or float; nonzero marks a real response token (binary: weights are not used).
        ref_logprobs: [N, T] under the frozen reference pi_ref (needed when the loss's ``beta > 0``).
        teacher_logprobs: [N, T] under the frozen teacher pi_T (kl_kd, rlad).
        student_logits: [N, T, V] student logits of the same positions (full-vocabulary KL only).
        teacher_logits: [N, T, V] teacher logits (full-vocabulary KL only).
        progress: training progress in [0, 1], drives beta schedules (kl_kd).
    """

    logprobs: Tensor
    old_logprobs: Tensor
    advantages: Tensor
    response_mask: Tensor
    ref_logprobs: Tensor | None = None
    teacher_logprobs: Tensor | None = None
    student_logits: Tensor | None = None
    teacher_logits: Tensor | None = None
    progress: float = 0.0


@dataclass
class LossOutput:
    """A scalar loss to call ``.backward()`` on, and detached 0-dim metric tensors (bare names, no phase prefix).

    Metrics stay tensors so that no host sync happens inside the loss; the engine converts them every
    ``log_every`` steps.
    """

    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


def require(batch: PolicyBatch, name: str, why: str) -> Tensor:
    """Return ``batch.<name>``, raising :class:`BatchError` naming the field and ``why`` it is needed when None."""
    value = getattr(batch, name)
    if value is None:
        raise BatchError(f"PolicyBatch.{name} is None but {why} needs it.")
    return value


def check_same_layout(reference_name: str, reference: Tensor, **others: Tensor | None) -> None:
    """Raise :class:`BatchError` unless every tensor in ``others`` has ``reference``'s shape and dtype.

    ``None`` entries are skipped. Mixing dtypes (e.g. a bf16 teacher against an fp32 student) would silently promote
    inside the loss; it is refused instead so that the caller decides where precision is spent.
    """
    if not reference.is_floating_point():
        raise BatchError(f"{reference_name} must be a floating tensor, got dtype {reference.dtype}.")
    for name, tensor in others.items():
        if tensor is None:
            continue
        if tuple(tensor.shape) != tuple(reference.shape):
            raise BatchError(
                f"{name} has shape {tuple(tensor.shape)} but {reference_name} has shape "
                f"{tuple(reference.shape)}; both must be [N, T]."
            )
        if tensor.dtype != reference.dtype:
            raise BatchError(
                f"{name} has dtype {tensor.dtype} but {reference_name} has dtype {reference.dtype}; "
                f"cast one of them (e.g. both torch.float32)."
            )


def check_mask_and_advantages(logprobs: Tensor, response_mask: Tensor, advantages: Tensor | None) -> None:
    """Raise :class:`BatchError` unless ``response_mask`` is [N, T] and ``advantages`` is [N] or [N, T]."""
    if logprobs.dim() != 2:
        raise BatchError(f"logprobs must be [N, T], got shape {tuple(logprobs.shape)}.")
    if tuple(response_mask.shape) != tuple(logprobs.shape):
        raise BatchError(
            f"response_mask has shape {tuple(response_mask.shape)} but logprobs has shape "
            f"{tuple(logprobs.shape)}; both must be [N, T]."
        )
    if advantages is not None and tuple(advantages.shape) not in (tuple(logprobs.shape[:1]), tuple(logprobs.shape)):
        n, t = logprobs.shape
        raise BatchError(f"advantages has shape {tuple(advantages.shape)}; expected [N]=({n},) or [N, T]=({n}, {t}).")


def as_bool_mask(mask: Tensor) -> Tensor:
    """The response mask as bool: nonzero = real token (float masks are binary here, not weights)."""
    return mask if mask.dtype == torch.bool else mask != 0
