"""Where the teacher disagrees with the student on the student's own samples, token by token.

One job: the diagnostic behind every teacher-guided method. KL-KD's reverse-KL term, OPD's per-token advantage
``log pi_T - log pi_S`` and RLAD's anchor ``alpha * pi_old + (1 - alpha) * pi_T`` all read the teacher's log-prob of
tokens the *student* sampled. When the student's errors put it in states the teacher never saw, the teacher's
opinion there is not a correction the student can use. This module makes that visible:

- :func:`disagreement_table`: one row per response token with the student's and the teacher's log-probs, the
  teacher's preferred token and the exact per-position reverse KL(student || teacher) over the vocabulary;
- :func:`summarise_disagreement`: per token string, how often it is sampled, its mean log-ratio and KL, and the share
  of its occurrences the teacher rejects (``log pi_T < reject_below``); sorted by total KL (what a KL term pushes
  hardest on).

``python scripts/teacher_disagreement.py`` runs it on the RL prompts with the trained student_init and teacher.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from torch import Tensor

from rl_distill.core.kl import full_vocab_kl
from rl_distill.core.logprobs import token_logprobs

TOKEN_SCHEMA = {
    "row": pl.Int64, "position": pl.Int64, "token": pl.Utf8, "student_logprob": pl.Float64,
    "teacher_logprob": pl.Float64, "teacher_argmax": pl.Utf8, "reverse_kl": pl.Float64,
}


def disagreement_table(response_ids: Tensor, response_mask: Tensor, student_logits: Tensor, teacher_logits: Tensor,
                       tokenizer: Any) -> pl.DataFrame:
    """One row per unmasked response token (schema :data:`TOKEN_SCHEMA`).

    ``response_ids``/``response_mask`` are [N, T]; ``student_logits``/``teacher_logits`` [N, T, V] predict those
    tokens (as :func:`rl_distill.models.scoring.score_responses` returns them, at the sampling temperature).
    """
    if student_logits.shape != teacher_logits.shape or student_logits.shape[:2] != response_ids.shape:
        raise ValueError(f"logits {tuple(student_logits.shape)} / {tuple(teacher_logits.shape)} do not match "
                         f"response ids {tuple(response_ids.shape)}: both must be [N, T, V] over the same tokens")
    picked_s = token_logprobs(student_logits, response_ids)
    picked_t = token_logprobs(teacher_logits, response_ids)
    kl = full_vocab_kl(student_logits.float(), teacher_logits.float())
    rows, cols = response_mask.bool().nonzero(as_tuple=True)
    vocab = tokenizer.convert_ids_to_tokens(list(range(student_logits.shape[-1])))
    return pl.DataFrame({
        "row": rows.tolist(), "position": cols.tolist(),
        "token": [vocab[i] for i in response_ids[rows, cols].tolist()],
        "student_logprob": picked_s[rows, cols].double().tolist(),
        "teacher_logprob": picked_t[rows, cols].double().tolist(),
        "teacher_argmax": [vocab[i] for i in teacher_logits[rows, cols].argmax(-1).tolist()],
        "reverse_kl": kl[rows, cols].double().tolist(),
    }, schema=TOKEN_SCHEMA)


def summarise_disagreement(tokens: pl.DataFrame, reject_below: float = -5.0) -> pl.DataFrame:
    """Per sampled token string: count, mean log pi_S and log pi_T, share rejected by the teacher
    (``log pi_T < reject_below``), the teacher's most common preferred token there, mean and total reverse KL; sorted
    by total KL, then token (deterministic)."""
    return (
        tokens.group_by("token")
        .agg(
            pl.len().alias("count"),
            pl.col("student_logprob").mean().alias("mean_student_logprob"),
            pl.col("teacher_logprob").mean().alias("mean_teacher_logprob"),
            (pl.col("teacher_logprob") < reject_below).mean().alias("teacher_rejects"),
            pl.col("teacher_argmax").filter(pl.col("teacher_argmax") != pl.col("token")).mode().sort().first()
            .alias("teacher_prefers_instead"),
            pl.col("reverse_kl").mean().alias("mean_reverse_kl"),
            pl.col("reverse_kl").sum().alias("total_reverse_kl"),
        )
        .sort(["total_reverse_kl", "token"], descending=[True, False])
    )


def overall(tokens: pl.DataFrame, reject_below: float = -5.0) -> dict[str, float]:
    """Token-level means: log pi_S, log pi_T, their gap, reverse KL, and the share the teacher rejects."""
    if tokens.is_empty():
        raise ValueError("no response tokens to summarise")
    s, t = tokens["student_logprob"], tokens["teacher_logprob"]
    return {
        "tokens": float(tokens.height),
        "mean_student_logprob": float(s.mean()),
        "mean_teacher_logprob": float(t.mean()),
        "mean_log_ratio_student_minus_teacher": float((s - t).mean()),
        "mean_reverse_kl": float(tokens["reverse_kl"].mean()),
        "teacher_rejects": float((t < reject_below).mean()),
    }
