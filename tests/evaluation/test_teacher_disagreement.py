"""The teacher-disagreement diagnostic: hand-computed log-probs, KL and per-token summaries."""

from __future__ import annotations

import math

import pytest
import torch

from rl_distill.evaluation.teacher_disagreement import disagreement_table, overall, summarise_disagreement


class _Vocab:
    tokens = ["a", "b", "c"]

    def convert_ids_to_tokens(self, ids):
        return [self.tokens[i] for i in ids]


def _logits(probs):
    return torch.tensor(probs, dtype=torch.float64).log()


def test_values_match_a_hand_computation():
    # One row, two tokens ("a", then "b"), the second masked out after it: only the first two count.
    ids = torch.tensor([[0, 1, 2]])
    mask = torch.tensor([[1, 1, 0]])
    student = _logits([[[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [1 / 3, 1 / 3, 1 / 3]]])
    teacher = _logits([[[0.25, 0.5, 0.25], [0.1, 0.8, 0.1], [1 / 3, 1 / 3, 1 / 3]]])
    table = disagreement_table(ids, mask, student, teacher, _Vocab())
    assert table["position"].to_list() == [0, 1] and table["token"].to_list() == ["a", "b"]
    assert table["student_logprob"].to_list() == pytest.approx([math.log(0.5), math.log(0.5)])
    assert table["teacher_logprob"].to_list() == pytest.approx([math.log(0.25), math.log(0.8)])
    assert table["teacher_argmax"].to_list() == ["b", "b"]
    kl0 = 0.5 * math.log(0.5 / 0.25) + 0.25 * math.log(0.25 / 0.5) + 0.25 * math.log(1.0)
    kl1 = 0.25 * math.log(0.25 / 0.1) + 0.5 * math.log(0.5 / 0.8) + 0.25 * math.log(0.25 / 0.1)
    assert table["reverse_kl"].to_list() == pytest.approx([kl0, kl1], abs=1e-6)
    stats = overall(table, reject_below=-1.0)  # log 0.25 = -1.39 is rejected, log 0.8 is not
    assert stats["teacher_rejects"] == 0.5 and stats["tokens"] == 2
    assert stats["mean_log_ratio_student_minus_teacher"] == pytest.approx(
        (math.log(0.5 / 0.25) + math.log(0.5 / 0.8)) / 2)


def test_identical_models_disagree_nowhere():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3)
    ids = torch.randint(0, 3, (2, 4))
    table = disagreement_table(ids, torch.ones(2, 4, dtype=torch.long), logits, logits.clone(), _Vocab())
    assert table["reverse_kl"].abs().max() < 1e-6
    assert (table["student_logprob"] - table["teacher_logprob"]).abs().max() < 1e-6


def test_summary_sorts_by_total_kl_and_names_the_teachers_choice():
    ids = torch.tensor([[0, 0, 1]])
    student = _logits([[[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.05, 0.9, 0.05]]])
    teacher = _logits([[[0.01, 0.01, 0.98], [0.01, 0.01, 0.98], [0.05, 0.9, 0.05]]])
    table = disagreement_table(ids, torch.ones(1, 3, dtype=torch.long), student, teacher, _Vocab())
    summary = summarise_disagreement(table, reject_below=-3.0)
    first = summary.row(0, named=True)
    assert first["token"] == "a" and first["count"] == 2 and first["teacher_rejects"] == 1.0
    assert first["teacher_prefers_instead"] == "c"
    last = summary.row(1, named=True)
    assert last["token"] == "b" and last["teacher_rejects"] == 0.0 and last["total_reverse_kl"] == pytest.approx(0.0)
    assert last["teacher_prefers_instead"] is None  # the teacher agrees with every "b"


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        disagreement_table(torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2), torch.zeros(1, 2, 3),
                           torch.zeros(1, 3, 3), _Vocab())
