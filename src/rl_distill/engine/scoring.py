"""Frozen-model scoring for a training step: teacher and reference log-probs (and logits), once, without grad.

One job: score a step's responses with a model that is not being trained. The forward pass itself is
:func:`rl_distill.models.scoring.sequence_logprobs` (re-exported here): the policy update, the old-policy scoring in
the rollout engines and this module all share it, so the three sets of log-probs line up token for token.
RLAD's whole overhead over GRPO is one teacher forward per step (no backward, the LM head applied to response
positions only): :func:`score_frozen_rows` after the rollout, or :mod:`rl_distill.engine.frozen_stream` beside it.
Shapes: N rows, T response tokens, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rl_distill.models.scoring import position_ids_from_mask, response_logits, score_responses, sequence_logprobs
from rl_distill.rollout.base import RolloutBatch

__all__ = ["FrozenModel", "ScoreSettings", "position_ids_from_mask", "response_logits", "score_frozen",
           "score_frozen_rows", "score_responses", "sequence_logprobs"]


@dataclass(frozen=True)
class FrozenModel:
    """A model a loss needs scored once per step: ``name`` ("teacher" | "reference"), ``with_logits`` for
    full-vocabulary KL."""

    name: str
    model: torch.nn.Module
    with_logits: bool = False


@dataclass(frozen=True)
class ScoreSettings:
    """How frozen models score: sampling temperature, log-softmax ``chunk_size``, ``rows_per_forward`` (None:
    :data:`~rl_distill.models.scoring.BUCKET_ROWS`) and ``vocab_size`` (padded embedding rows sliced away)."""

    temperature: float = 1.0
    chunk_size: int | None = None
    rows_per_forward: int | None = None
    vocab_size: int | None = None


@torch.no_grad()
def score_frozen_rows(models: list[FrozenModel], input_ids: Tensor, attention_mask: Tensor, response_start: int,
                      response_mask: Tensor, settings: ScoreSettings) -> dict[str, tuple[Tensor, Tensor | None]]:
    """``{name: (logprobs [N, T] fp32, logits [N, T, V] or None)}`` of the responses under each frozen model.

    Eval mode and no grad while scoring (each model's mode is restored).
    """
    out = {}
    for frozen in models:
        was_training = frozen.model.training
        frozen.model.eval()
        try:
            out[frozen.name] = score_responses(
                frozen.model, input_ids, attention_mask, response_start, response_mask,
                temperature=settings.temperature, chunk_size=settings.chunk_size,
                rows_per_forward=settings.rows_per_forward, with_logits=frozen.with_logits,
                vocab_size=settings.vocab_size)
        finally:
            frozen.model.train(was_training)
    return out


def score_frozen(model: torch.nn.Module, batch: RolloutBatch, *, temperature: float = 1.0,
                 chunk_size: int | None = None, micro_batch_size: int | None = None,
                 with_logits: bool = False, vocab_size: int | None = None) -> tuple[Tensor, Tensor | None]:
    """``(logprobs [N, T] fp32, logits [N, T, V] or None)`` of ``batch``'s responses under ``model`` (no grad).

    Log-probs are zero where ``response_mask`` is 0. Length-bucketed (:func:`score_responses`): padding after short
    responses is not run through the model. ``with_logits`` also returns the (temperature-scaled) logits for
    full-vocabulary KL, sliced to ``vocab_size``; that is N*T*V numbers: keep it for small vocabularies.
    """
    settings = ScoreSettings(temperature, chunk_size, micro_batch_size, vocab_size)
    return score_frozen_rows([FrozenModel("model", model, with_logits)], batch.input_ids, batch.attention_mask,
                             batch.response_start, batch.response_mask, settings)["model"]
