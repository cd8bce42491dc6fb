"""The confidence generator C_phi: class-balanced BCE by hand, balancing, pooling, fit/update, save/load
(R-TAP, arXiv 2603.02099, Sec. 3 and Algorithm 1)."""

from __future__ import annotations

import math

import pytest
import torch

from rl_distill.models.factory import ModelConfig, build_model
from rl_distill.models.tokenizer import build_tokenizer
from rl_distill.rtap.confidence import (
    ConfidenceGenerator,
    balance_indices,
    balance_per_question,
    class_balanced_bce,
    class_balanced_weights,
    linear_lr,
)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer("0123456789+*=\n ")


@pytest.fixture(scope="module")
def policy(tokenizer):
    return build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, seed=3), tokenizer)


def test_class_balanced_weights_on_an_imbalanced_batch() -> None:
    # K = 5 with 4 positives and 1 negative: w_pos = 5 / (2 * 4) = 0.625, w_neg = 5 / (2 * 1) = 2.5.
    # Each class carries half the total weight: 4 * 0.625 = 2.5 = 1 * 2.5.
    weights = class_balanced_weights(torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0]))
    assert weights.tolist() == pytest.approx([0.625, 0.625, 2.5, 0.625, 0.625])
    assert class_balanced_weights(torch.tensor([1.0, 1.0])).tolist() == [1.0, 1.0]  # one class: plain BCE


def test_class_balanced_bce_by_hand() -> None:
    # logits 0 -> p = 0.5, BCE = ln 2 per row; logit ln 3 -> p = 0.75.
    # rows: (0, y=1) ln2, (0, y=1) ln2, (ln3, y=1) -ln 0.75, (ln3, y=0) -ln 0.25.
    # weights: K=4, 3 positives -> 4/6 = 2/3 each, 1 negative -> 4/2 = 2.
    # loss = (2/3 * (2 ln2 - ln 0.75) + 2 * (-ln 0.25)) / 4
    logits = torch.tensor([0.0, 0.0, math.log(3.0), math.log(3.0)])
    labels = torch.tensor([1.0, 1.0, 1.0, 0.0])
    expected = (2 / 3 * (2 * math.log(2) - math.log(0.75)) + 2 * (-math.log(0.25))) / 4
    assert float(class_balanced_bce(logits, labels)) == pytest.approx(expected, rel=1e-6)


def test_balance_indices_subsamples_the_majority() -> None:
    labels = [True] * 2 + [False] * 8
    idx = balance_indices(labels, seed=0)
    kept = [labels[i] for i in idx]
    assert sum(kept) == 2 and len(kept) == 4  # both positives + 2 of the 8 negatives (1:1)
    assert idx == sorted(idx)
    assert len(balance_indices(labels, seed=0, ratio=2.0)) == 6  # 2 positives + 4 negatives
    assert balance_indices([True, True], seed=0) == [0, 1]  # one class: nothing to balance against


def test_linear_lr_decay() -> None:
    # 1e-5 -> 1e-6 over 4 steps: step s gets 1e-5 - 9e-6 * s / 3
    assert [linear_lr(s, 4, 1e-5, 1e-6) for s in range(4)] == pytest.approx([1e-5, 7e-6, 4e-6, 1e-6])


def test_score_starts_at_half_and_pools_the_last_real_token(policy, tokenizer) -> None:
    gen = ConfidenceGenerator.from_policy(policy, tokenizer)
    p = gen.score(["1+2\n", "12*34\n"], ["<think>x</think><answer>3</answer>", "<answer>9</answer>"])
    assert p.shape == (2,) and torch.allclose(p, torch.full((2,), 0.5))  # zero-initialised head
    torch.nn.init.normal_(gen.model.head.weight)
    ids, mask = gen.encode(["1+2\n", "12*34\n"], ["3", "408"])  # left padded
    left = gen.model(ids, mask)
    # The same rows one at a time (no padding) give the same scores: padding and pooling are consistent.
    single = torch.cat([gen.model(ids[i:i + 1, mask[i].bool()], mask[i:i + 1, mask[i].bool()]) for i in range(2)])
    assert torch.allclose(left, single, atol=1e-5)


def test_body_is_a_copy_of_the_policy(policy, tokenizer) -> None:
    gen = ConfidenceGenerator.from_policy(policy, tokenizer, init="policy")
    src = policy.base_model.embed_tokens.weight
    assert torch.equal(gen.model.body.embed_tokens.weight, src)
    assert gen.model.body.embed_tokens.weight.data_ptr() != src.data_ptr()  # a copy, not shared
    scratch = ConfidenceGenerator.from_policy(policy, tokenizer, init="scratch")
    assert not torch.equal(scratch.model.body.embed_tokens.weight, src)


def test_fit_and_update_learn_a_separable_toy(policy, tokenizer) -> None:
    torch.manual_seed(0)
    gen = ConfidenceGenerator.from_policy(policy, tokenizer, batch_size=8)
    # Label = the cycle ends in 7; 3 positives : 9 negatives (imbalanced on purpose).
    cycles = [f"<answer>{d}{e}</answer>" for d in "123" for e in "7000"]
    labels = [c.endswith("7</answer>") for c in cycles]
    prompts = ["1+1\n"] * len(cycles)
    losses = gen.fit(prompts, cycles, labels, epochs=12, lr=1e-2, lr_end=1e-3)
    assert losses[-1] < losses[0]
    p = gen.score(prompts, cycles)
    y = torch.tensor(labels)
    assert p[y].min() > p[~y].max()  # every positive above every negative
    metrics = gen.update(prompts, cycles, labels, steps=2, lr=1e-4)
    assert set(metrics) == {"confidence/update_loss", "confidence/update_positive_rate"}
    assert metrics["confidence/update_positive_rate"] == pytest.approx(0.25)


def test_save_load_round_trip(policy, tokenizer, tmp_path) -> None:
    gen = ConfidenceGenerator.from_policy(policy, tokenizer, batch_size=4)
    torch.nn.init.normal_(gen.model.head.weight)
    path = gen.save(tmp_path / "confidence")
    assert (path / "head.safetensors").exists() and (path / "body" / "model.safetensors").exists()
    loaded = ConfidenceGenerator.load(path, tokenizer)
    args = (["1+2\n", "3*4\n"], ["<answer>3</answer>", "<answer>12</answer>"])
    assert torch.allclose(gen.score(*args), loaded.score(*args), atol=1e-6)
    assert loaded.batch_size == 4


def test_each_question_is_balanced_on_its_own() -> None:
    # q1 is easy (5 right, 1 wrong), q2 hard (1 right, 5 wrong), q3 always wrong. The pool is 6:12; balancing it as
    # a whole would keep all 6 right and 6 of the 12 wrong, drawn from any question. Per question: 1:1 in q1 and q2,
    # q3 kept whole (one class only).
    labels = [True] * 5 + [False] + [True] + [False] * 5 + [False] * 3
    questions = ["q1"] * 6 + ["q2"] * 6 + ["q3"] * 3
    idx = balance_per_question(labels, questions, seed=0)
    per_q = {q: [labels[i] for i in idx if questions[i] == q] for q in ("q1", "q2", "q3")}
    assert sorted(per_q["q1"]) == [False, True] and sorted(per_q["q2"]) == [False, True]
    assert per_q["q3"] == [False, False, False]
    assert 5 in idx and 6 in idx  # each question's minority row is always kept
    assert idx == sorted(idx) and idx == balance_per_question(labels, questions, seed=0)  # seeded
    assert len(balance_per_question(labels, questions, seed=0, ratio=2.0)) == 3 + 3 + 3
