"""R-TAP stage 1: sample single-cycle answers from the policy, label them, balance them, train C_phi, evaluate it.

One job: produce a trained :class:`~rl_distill.rtap.confidence.ConfidenceGenerator` and its held-out quality
(R-TAP, arXiv 2603.02099, Sec. 3 stage 1 and Algorithm 1 lines 1-4): for each training question the policy writes
``samples_per_question`` single cycles (paper: 128) with the same cycle sampler as the recursive rollouts; the
verifier labels each cycle correct / not; each question's cycles are balanced to about 1:1 by subsampling its
majority class; C_phi trains with class-balanced BCE and a linear lr decay. Held-out cycles, sampled the same way
from validation questions and not balanced, give ``confidence/auroc`` and ``confidence/ece`` (10 bins), and
``confidence/auroc_low`` / ``confidence/auroc_high``, the AUROC's 95% interval with the held-out questions resampled
(:func:`~rl_distill.rtap.calibration.auroc_interval`).

Where ``max_questions`` / ``eval_max_questions`` cap the questions, both sets are drawn over every difficulty level
(:func:`~rl_distill.engine.validation.validation_subset`): the splits list their levels one after another, and the
first rows alone were all of the easiest level (the default's 128 held-out validation questions were all n = 2, its
128 training questions 45 n = 2 and 83 plain n = 3, none nested). ``confidence/level_auroc`` is what knowing only
the question's difficulty gives: the AUROC on the held-out cycles of each level's positive rate among the training
cycles (plain and nested n = 3 share a level). C_phi has learnt something about the cycle itself only where
``confidence/auroc`` exceeds it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rl_distill.engine.validation import validation_subset
from rl_distill.rollout.base import RolloutConfig, encode_prompts
from rl_distill.rtap.calibration import auroc, auroc_interval, confidence_metrics
from rl_distill.rtap.confidence import ConfidenceGenerator, balance_per_question
from rl_distill.rtap.trajectory import decode_cycle, generate_cycle
from rl_distill.tasks.base import Example, Task, Verdict
from rl_distill.typed_config import check_choice, check_range

LogFn = Callable[[dict[str, float], int], None]
QUESTION_SOURCES = ("rl_prompts", "train_examples")


@dataclass(frozen=True)
class ConfidenceConfig:
    """The confidence generator and its training (paper values in brackets; defaults scaled to a 2-core CPU).

    ``samples_per_question`` single cycles per training question [128]; ``max_questions`` caps the questions used
    (None: all); ``lr -> lr_end`` linear decay over ``epochs`` passes [1e-5 -> 1e-6 for a 14B body; a ~1M-parameter
    body from scratch-like weights needs ~1e-3]; ``balance_ratio`` majority rows kept per minority row [1:1];
    ``eval_*`` size the held-out cycle set drawn from the validation questions. Stage 2: ``update_steps`` updates per
    RL step on the step's fresh cycles (None: the policy's mu [12]) at ``update_lr`` (None: ``lr_end``).

    ``questions`` names where stage 1's questions come from: ``rl_prompts``, the RL training questions (the paper's
    "each training question"), or ``train_examples``, the whole SFT training split **[choice, opt-in]**: many more
    distinct questions for the same number of cycles. Measured on the default student_init (validation, 96 x 8
    held-out cycles): the RL pool's 128 questions x 8 give AUROC 0.61, the split's 5759 x 4 0.74 (0.68 at
    confidence seed 1), at 7-13 minutes of stage 1 on 2 cores instead of ~30 s; more samples of the same questions
    overfit instead (229 x 128: 0.56).
    """

    init: str = "policy"
    questions: str = "rl_prompts"
    samples_per_question: int = 16
    max_questions: int | None = 256
    temperature: float = 1.0
    balance_ratio: float = 1.0
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    lr_end: float = 1e-4
    weight_decay: float = 0.0
    eval_samples_per_question: int = 4
    eval_max_questions: int = 64
    update_steps: int | None = None
    update_lr: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("init", self.init, ("policy", "scratch"))
        check_choice("questions", self.questions, QUESTION_SOURCES)
        for name in ("samples_per_question", "epochs", "batch_size", "eval_samples_per_question",
                     "eval_max_questions"):
            check_range(name, getattr(self, name), 1)
        if self.max_questions is not None:
            check_range("max_questions", self.max_questions, 1)
        check_range("temperature", self.temperature, 0.0, lo_open=True)
        check_range("balance_ratio", self.balance_ratio, 1.0)
        check_range("lr", self.lr, 0.0, lo_open=True)
        check_range("lr_end", self.lr_end, 0.0)
        check_range("weight_decay", self.weight_decay, 0.0)
        if self.update_steps is not None:
            check_range("update_steps", self.update_steps, 0)
        if self.update_lr is not None:
            check_range("update_lr", self.update_lr, 0.0)


@dataclass(frozen=True)
class LabelledCycles:
    """K (question, cycle, label, difficulty) rows: ``labels[k]`` is whether ``cycles[k]``'s answer verifies
    correct, ``difficulties[k]`` the level of the question it answers."""

    prompts: list[str]
    cycles: list[str]
    labels: list[bool]
    difficulties: list[int]

    def __post_init__(self) -> None:
        sizes = {len(self.prompts), len(self.cycles), len(self.labels), len(self.difficulties)}
        if len(sizes) != 1:
            raise ValueError(f"LabelledCycles needs one prompt, cycle, label and difficulty per row; got "
                             f"{len(self.prompts)}, {len(self.cycles)}, {len(self.labels)}, {len(self.difficulties)}")

    def subset(self, idx: Sequence[int]) -> LabelledCycles:
        return LabelledCycles([self.prompts[i] for i in idx], [self.cycles[i] for i in idx],
                              [self.labels[i] for i in idx], [self.difficulties[i] for i in idx])


def level_auroc(train: LabelledCycles, held: LabelledCycles) -> float:
    """AUROC on ``held`` of the predictor "positive rate of this cycle's difficulty among ``train``'s cycles"
    (a level absent from ``train`` scores its overall rate): the confidence that knows the question's level only."""
    overall = sum(train.labels) / max(1, len(train.labels))
    total = Counter(train.difficulties)
    right = Counter(level for level, label in zip(train.difficulties, train.labels, strict=True) if label)
    rate = {level: right[level] / n for level, n in total.items()}
    scores = torch.tensor([rate.get(level, overall) for level in held.difficulties], dtype=torch.float64)
    return auroc(scores, torch.tensor([float(v) for v in held.labels], dtype=torch.float64))


def sample_cycles(policy: torch.nn.Module, tokenizer: Any, task: Task, examples: Sequence[Example],
                  samples_per_question: int, rollout: RolloutConfig) -> LabelledCycles:
    """``samples_per_question`` first cycles per example from ``policy`` (the rollout's per-cycle token cap and
    sampling settings), labelled by ``task.verify`` (K = len(examples) * samples_per_question)."""
    prompts, cycles, labels, difficulties = [], [], [], []
    step = max(1, (rollout.generation_batch_size or 256) // samples_per_question)  # questions per generate call
    for lo in range(0, len(examples), step):
        chunk = list(examples[lo:lo + step])
        ids, mask = encode_prompts(tokenizer, [ex.prompt for ex in chunk])
        rows = [row[m.bool()].tolist() for row, m in zip(ids, mask)]
        contexts = [row for row in rows for _ in range(samples_per_question)]
        results = generate_cycle(policy, tokenizer, contexts, rollout)
        for k, cycle in enumerate(results):
            ex = chunk[k // samples_per_question]
            text = decode_cycle(tokenizer, cycle.ids)
            prompts.append(ex.prompt)
            cycles.append(text)
            labels.append(task.verify(text, ex.answer) == Verdict.CORRECT)
            difficulties.append(ex.difficulty)
    return LabelledCycles(prompts, cycles, labels, difficulties)


def train_confidence_generator(policy: torch.nn.Module, tokenizer: Any, task: Task,
                               train_examples: Sequence[Example], val_examples: Sequence[Example],
                               cfg: ConfidenceConfig, rollout: RolloutConfig, *,
                               log_fn: LogFn | None = None) -> tuple[ConfidenceGenerator, dict[str, float]]:
    """Stage 1 end to end; returns C_phi and ``confidence/*`` metrics (data counts, AUROC, ECE, before and after).

    ``rollout`` supplies the per-cycle token cap (``max_new_tokens``) and top-p; the temperature is ``cfg``'s.
    """
    sampling = dataclasses.replace(rollout, temperature=cfg.temperature, group_size=1)
    train_qs = validation_subset(train_examples, cfg.max_questions, seed=cfg.seed)
    data = sample_cycles(policy, tokenizer, task, train_qs, cfg.samples_per_question, sampling)
    kept = data.subset(balance_per_question(data.labels, data.prompts, cfg.seed, cfg.balance_ratio))
    held_qs = validation_subset(val_examples, cfg.eval_max_questions, seed=cfg.seed)
    held = sample_cycles(policy, tokenizer, task, held_qs, cfg.eval_samples_per_question, sampling) if held_qs \
        else LabelledCycles([], [], [], [])

    generator = ConfidenceGenerator.from_policy(policy, tokenizer, init=cfg.init, batch_size=cfg.batch_size,
                                                seed=cfg.seed)
    metrics: dict[str, float] = {
        "confidence/sampled_cycles": float(len(data.labels)),
        "confidence/sampled_positive_rate": sum(data.labels) / max(1, len(data.labels)),
        "confidence/train_cycles": float(len(kept.labels)),
        "confidence/train_positive_rate": sum(kept.labels) / max(1, len(kept.labels)),
    }
    y_held = torch.tensor([float(v) for v in held.labels])
    if held.labels:
        before = confidence_metrics(generator.score(held.prompts, held.cycles), y_held, prefix="confidence/init_")
        metrics.update({k: before[k] for k in ("confidence/init_auroc", "confidence/init_ece")})
        metrics["confidence/level_auroc"] = level_auroc(data, held)
    losses = generator.fit(kept.prompts, kept.cycles, kept.labels, epochs=cfg.epochs, lr=cfg.lr,
                           lr_end=cfg.lr_end, weight_decay=cfg.weight_decay, seed=cfg.seed, log_fn=log_fn)
    if losses:
        metrics["confidence/final_train_loss"] = losses[-1]
    if held.labels:
        scores = generator.score(held.prompts, held.cycles)
        metrics.update(confidence_metrics(scores, y_held))
        low, high = auroc_interval(scores, y_held, held.prompts, seed=cfg.seed)
        metrics.update({"confidence/auroc_low": low, "confidence/auroc_high": high})
    return generator, metrics
