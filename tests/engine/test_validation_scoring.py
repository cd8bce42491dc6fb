"""Validation accuracy (overall and per difficulty) and frozen-model scoring for teacher/reference."""

from __future__ import annotations

import copy

import pytest
import torch

from rl_distill.engine.scoring import score_frozen, sequence_logprobs
from rl_distill.engine.validation import evaluate_accuracy, summarize_counts, validation_subset
from rl_distill.rollout.base import RolloutConfig, build_rollout_engine
from rl_distill.tasks.base import Example, Verdict


def test_summarize_counts_by_hand():
    # d1: 3 of 4 correct, d2: 1 of 4 -> overall 4 / 8; mean response length (40 + 60) / 8 = 12.5.
    out = summarize_counts({1: [3, 4, 40], 2: [1, 4, 60]})
    assert out == {"accuracy": 0.5, "n": 8.0, "response_len_mean": 12.5, "accuracy/d1": 0.75,
                   "accuracy/d2": 0.25}


def _levels(counts: dict[int, int]) -> list[Example]:
    return [Example(id=f"{d}/{i}", task="t", difficulty=d, prompt="p", trace="", answer="a")
            for d, n in counts.items() for i in range(n)]


def test_validation_subset_draws_every_level():
    # The split lists level 2 first: its first 9 rows would all be level 2. Round-robin gives 3 + 3 + 3,
    # and a level with only 2 examples gives both, the rest going to the others (9 = 2 + 4 + 3 or 2 + 3 + 4).
    examples = _levels({2: 30, 3: 30, 4: 30})
    subset = validation_subset(examples, 9)
    assert sorted(ex.difficulty for ex in subset) == [2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert subset == validation_subset(examples, 9)  # deterministic
    assert len({ex.id for ex in subset}) == 9
    small = validation_subset(_levels({2: 30, 3: 2, 4: 30}), 9)
    counts = {d: sum(ex.difficulty == d for ex in small) for d in (2, 3, 4)}
    assert counts[3] == 2 and counts[2] + counts[4] == 7 and abs(counts[2] - counts[4]) <= 1
    assert validation_subset(examples, None) == examples
    assert validation_subset(examples, 500) == examples


class _AlwaysRight:
    """A verifier that accepts anything: the counts then test the plumbing, not the model."""

    def verify(self, completion, answer):
        return Verdict.CORRECT


def test_evaluate_accuracy_counts_every_example(student, tokenizer, task):
    examples = task.generate(3, 1, seed=0) + task.generate(2, 2, seed=0)
    cfg = RolloutConfig(group_size=4, temperature=0.0, max_new_tokens=6)
    out = evaluate_accuracy(student, tokenizer, task, examples, cfg, batch_size=2)
    assert out["n"] == 5.0 and set(out) >= {"accuracy/d1", "accuracy/d2"}
    assert out["accuracy"] == 0.0  # a random model does not write "<answer>" blocks
    right = evaluate_accuracy(student, tokenizer, _AlwaysRight(), examples, cfg)
    assert right["accuracy"] == right["accuracy/d1"] == right["accuracy/d2"] == 1.0
    assert 1.0 <= right["response_len_mean"] <= 6.0


def test_score_frozen_matches_sequence_logprobs_and_masks(student, teacher, tokenizer):
    cfg = RolloutConfig(group_size=2, max_new_tokens=8)
    torch.manual_seed(0)
    batch = build_rollout_engine(cfg).generate(student, tokenizer, ["1+2\n", "3+4\n"], cfg)
    teacher.train()
    logprobs, logits = score_frozen(teacher, batch, micro_batch_size=3, with_logits=True, vocab_size=len(tokenizer))
    assert teacher.training  # mode restored
    with torch.no_grad():
        direct = sequence_logprobs(teacher.eval(), batch.input_ids, batch.attention_mask, batch.response_start)
    torch.testing.assert_close(logprobs, direct * batch.response_mask, atol=1e-5, rtol=1e-5)
    assert (logprobs[batch.response_mask == 0] == 0).all()
    assert logits.shape == (*batch.response_ids.shape, len(tokenizer)) and not logits.requires_grad
    # The student scoring itself reproduces the rollout's old log-probs.
    own, _ = score_frozen(student, batch)
    torch.testing.assert_close(own, batch.old_logprobs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_score_frozen_temperature(student, tokenizer, temperature):
    cfg = RolloutConfig(group_size=1, max_new_tokens=4, temperature=temperature)
    batch = build_rollout_engine(cfg).generate(student, tokenizer, ["5+5\n"], cfg)
    scored, _ = score_frozen(student, batch, temperature=temperature)
    torch.testing.assert_close(scored, batch.old_logprobs, atol=1e-5, rtol=1e-5)


def test_bfloat16_teacher_log_probs_stay_close_to_float32(student, teacher, tokenizer):
    """What ``teacher_dtype: bfloat16`` costs in accuracy: the reduction is fp32, only the matmuls are bf16."""
    cfg = RolloutConfig(group_size=4, max_new_tokens=16, temperature=2.0)
    torch.manual_seed(0)
    batch = build_rollout_engine(cfg).generate(student, tokenizer, ["1+2\n", "3+4\n"], cfg)
    full, _ = score_frozen(teacher, batch)
    half, _ = score_frozen(copy.deepcopy(teacher).to(torch.bfloat16), batch)
    real = batch.response_mask.bool()
    assert half.dtype == torch.float32 and not torch.equal(full, half)
    assert (full - half)[real].abs().mean() < 0.02 and (full - half)[real].abs().max() < 0.1
