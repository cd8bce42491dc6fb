"""Frozen-model scoring for a training step: teacher and reference log-probs (and logits), once, without grad.

One job: score a step's responses with a model that is not being trained. The forward pass itself is
:func:`rl_distill.models.scoring.sequence_logprobs` (re-exported here): the policy update, the old-policy scoring in
the rollout engines and this module all share it, so the three sets of log-probs line up token for token.
RLAD's whole overhead over GRPO is one call of :func:`score_frozen` per step (one teacher forward, no backward,
the LM head applied to response positions only).
Shapes: N rows, T response tokens, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rl_distill.models.scoring import position_ids_from_mask, response_logits, score_responses, sequence_logprobs
from rl_distill.rollout.base import RolloutBatch

__all__ = ["position_ids_from_mask", "response_logits", "score_frozen", "score_responses", "sequence_logprobs"]


@torch.no_grad()
def score_frozen(model: torch.nn.Module, batch: RolloutBatch, *, temperature: float = 1.0,
                 chunk_size: int | None = None, micro_batch_size: int | None = None,
                 with_logits: bool = False, vocab_size: int | None = None) -> tuple[Tensor, Tensor | None]:
    """``(logprobs [N, T] fp32, logits [N, T, V] or None)`` of ``batch``'s responses under ``model`` (no grad).

    Log-probs are zero where ``response_mask`` is 0. Length-bucketed (:func:`score_responses`): padding after short
    responses is not run through the model. ``with_logits`` also returns the (temperature-scaled) logits for
    full-vocabulary KL, sliced to ``vocab_size``; that is N*T*V numbers: keep it for small vocabularies.
    """
    was_training = model.training
    model.eval()
    try:
        return score_responses(model, batch.input_ids, batch.attention_mask, batch.response_start,
                               batch.response_mask, temperature=temperature, chunk_size=chunk_size,
                               rows_per_forward=micro_batch_size, with_logits=with_logits, vocab_size=vocab_size)
    finally:
        model.train(was_training)
