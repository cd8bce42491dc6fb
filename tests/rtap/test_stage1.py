"""R-TAP stage 1 on scripted single cycles: sampling, verifier labels, per-question balance, metrics (2603.02099)."""

from __future__ import annotations

import pytest

from rl_distill.rollout.base import RolloutConfig
from rl_distill.rtap import stage1
from rl_distill.rtap.stage1 import ConfidenceConfig, sample_cycles, train_confidence_generator
from rl_distill.tasks.base import Example
from rl_distill.typed_config import ConfigError

from .conftest import ANSWERS, SCRIPT


@pytest.fixture
def first_cycles(monkeypatch, scripted):
    # stage1 imported generate_cycle by name: point it at the scripted policy too.
    from rl_distill.rtap import trajectory

    monkeypatch.setattr(stage1, "generate_cycle", trajectory.generate_cycle)


def _examples() -> list[Example]:
    return [Example(id=str(i), task="arithmetic", difficulty=1, prompt=p, trace="", answer=ANSWERS[p])
            for i, p in enumerate(SCRIPT)]


def test_sample_cycles_labels_with_the_verifier(first_cycles, model, tokenizer, task) -> None:
    data = sample_cycles(model, tokenizer, task, _examples(), 2, RolloutConfig(group_size=1, max_new_tokens=40))
    # 5 questions x 2 samples; only "1+2" is answered right at its first cycle.
    assert data.prompts == [p for p in SCRIPT for _ in range(2)]
    assert data.labels == [True, True] + [False] * 8


def test_stage1_balances_and_reports(first_cycles, model, tokenizer, task) -> None:
    cfg = ConfidenceConfig(samples_per_question=2, epochs=2, batch_size=4, eval_samples_per_question=1)
    gen, metrics = train_confidence_generator(model, tokenizer, task, _examples(), _examples(), cfg,
                                              RolloutConfig(group_size=1, max_new_tokens=40))
    assert metrics["confidence/sampled_cycles"] == 10
    assert metrics["confidence/sampled_positive_rate"] == pytest.approx(0.2)
    # Balanced per question: each scripted question answers its 2 samples alike (1+2 right twice, the others wrong
    # twice), so every question holds one class and keeps both samples (the class-balanced BCE weighs 2 vs 8).
    assert metrics["confidence/train_cycles"] == 10
    assert metrics["confidence/train_positive_rate"] == pytest.approx(0.2)
    assert metrics["confidence/num_cycles"] == 5  # held out: 5 questions x 1, not balanced
    assert metrics["confidence/init_auroc"] == 0.5  # zero head: all scores tie
    for name in ("confidence/auroc", "confidence/ece", "confidence/final_train_loss"):
        assert name in metrics
    # the AUROC's interval resamples the 5 held-out questions (one positive among them, so about a third of the
    # resamples draw no positive and are left out)
    assert metrics["confidence/auroc_low"] <= metrics["confidence/auroc"] <= metrics["confidence/auroc_high"]


def test_confidence_config_validation() -> None:
    with pytest.raises(ConfigError, match="balance_ratio"):
        ConfidenceConfig(balance_ratio=0.5)
    with pytest.raises(ConfigError, match="init"):
        ConfidenceConfig(init="random")


def test_level_auroc_scores_each_level_by_its_training_rate() -> None:
    """Level 1 is right in 3 of 4 training cycles, level 2 in 1 of 4: held-out cycles scored 0.75 / 0.25 by level.
    Held out: level 1 (right, wrong), level 2 (right, wrong, wrong). Of the 2 x 3 (positive, negative) pairs, the
    level-1 positive beats the 2 level-2 negatives and ties the level-1 negative (1/2); the level-2 positive ties the
    2 level-2 negatives (1/2 each) and loses to the level-1 negative: (2 + 0.5 + 1) / 6."""
    train = stage1.LabelledCycles(["q"] * 8, ["c"] * 8, [True, True, True, False, True, False, False, False],
                                  [1, 1, 1, 1, 2, 2, 2, 2])
    held = stage1.LabelledCycles(["q"] * 5, ["c"] * 5, [True, False, True, False, False], [1, 1, 2, 2, 2])
    assert stage1.level_auroc(train, held) == pytest.approx(3.5 / 6)
    assert stage1.level_auroc(train, held.subset([2, 3, 4])) == pytest.approx(0.5)  # one level: no information


def test_stage1_draws_questions_from_every_level(monkeypatch, first_cycles, model, tokenizer, task) -> None:
    """The splits list their levels one after another; capped question sets must still span them (the default's first
    128 validation questions were all n = 2)."""
    drawn: list[list[int]] = []
    real = stage1.sample_cycles

    def spy(policy, tok, task_, examples, *args, **kwargs):
        drawn.append(sorted(ex.difficulty for ex in examples))
        return real(policy, tok, task_, examples, *args, **kwargs)

    monkeypatch.setattr(stage1, "sample_cycles", spy)
    examples = [Example(id=f"{d}{i}", task="arithmetic", difficulty=d, prompt=p, trace="", answer=ANSWERS[p])
                for d in (1, 2) for i, p in enumerate(SCRIPT)]  # 5 of level 1, then 5 of level 2
    cfg = ConfidenceConfig(samples_per_question=1, max_questions=4, epochs=1, batch_size=4,
                           eval_samples_per_question=1, eval_max_questions=2)
    _, metrics = train_confidence_generator(model, tokenizer, task, examples, examples, cfg,
                                            RolloutConfig(group_size=1, max_new_tokens=40))
    assert drawn == [[1, 1, 2, 2], [1, 2]]
    assert "confidence/level_auroc" in metrics
