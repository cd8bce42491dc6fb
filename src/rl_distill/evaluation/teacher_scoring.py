"""Score a teacher on the curated prompts: what it solves, how sure it is, and how well it can score the student.

One job: the numbers the ``teacher_scoring`` pipeline needs to (a) rank teacher candidates and (b) filter the RL
prompt pool. For each prompt, k samples from the teacher and from the warm-started student give per-prompt pass
rates; the teacher's mean token entropy on its own samples says how peaked it is; the teacher's mean log-likelihood
of the student's own samples, ``E_{y ~ pi_S}[ (1/|y|) sum_t log pi_T(y_t | x, y_<t) ]``, says how informative the
teacher's scores are on the student's distribution (RLAD's anchor, arXiv 2602.22495 Eq. 3-5, and KDRL's reverse KL
both evaluate pi_T on student samples only).

Prompt filter (RL needs groups with reward variance): drop prompts the student already solves in at least
``student_solved_at_least`` of its samples, and prompts the teacher solves in at most ``teacher_solved_at_most``
(either threshold None: that side does not filter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from rl_distill.core.logprobs import token_entropy
from rl_distill.models.scoring import response_logits, sequence_logprobs
from rl_distill.rollout.base import RolloutBatch, RolloutConfig, build_rollout_engine
from rl_distill.tasks.base import Example, Task, Verdict
from rl_distill.typed_config import check_range


@dataclass(frozen=True)
class ScoringConfig:
    """``k`` samples per prompt at ``temperature``/``top_p`` (the RL rollout's decoding by default)."""

    k: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    prompts_per_batch: int = 32
    max_prompts: int | None = None
    seed: int = 0
    student_solved_at_least: float | None = 1.0
    teacher_solved_at_most: float | None = 0.0

    def __post_init__(self) -> None:
        check_range("k", self.k, 1)
        check_range("temperature", self.temperature, 0.0, lo_open=True)
        check_range("top_p", self.top_p, 0.0, 1.0, lo_open=True)
        check_range("max_new_tokens", self.max_new_tokens, 1)
        check_range("prompts_per_batch", self.prompts_per_batch, 1)
        for name in ("student_solved_at_least", "teacher_solved_at_most"):
            if getattr(self, name) is not None:
                check_range(name, getattr(self, name), 0.0, 1.0)
        if self.max_prompts is not None:
            check_range("max_prompts", self.max_prompts, 1)

    def rollout(self) -> RolloutConfig:
        return RolloutConfig(group_size=self.k, temperature=self.temperature, top_p=self.top_p,
                             max_new_tokens=self.max_new_tokens)


@dataclass(frozen=True)
class ModelScores:
    """Per-prompt pass rates (prompt order) and the model's mean token entropy on its own samples."""

    pass_rates: list[float]
    mean_entropy: float
    batches: list[RolloutBatch]


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(sum, count) of ``values`` over ``mask`` (so batch means combine exactly)."""
    mask = mask.to(values.dtype)
    return float((values * mask).sum()), float(mask.sum())


@torch.no_grad()
def sample_and_score(model: Any, tokenizer: Any, task: Task, examples: Sequence[Example], cfg: ScoringConfig,
                     *, desc: str = "scoring") -> ModelScores:
    """k samples per example; pass rate per example and the mean per-token entropy of ``model`` on them."""
    rollout = cfg.rollout()
    engine = build_rollout_engine(rollout)
    torch.manual_seed(cfg.seed)
    model.eval()
    rates: list[float] = []
    batches: list[RolloutBatch] = []
    ent_sum = ent_count = 0.0
    chunks = range(0, len(examples), cfg.prompts_per_batch)
    for lo in tqdm(chunks, desc=desc, leave=False, disable=len(chunks) < 2):
        chunk = examples[lo:lo + cfg.prompts_per_batch]
        batch = engine.generate(model, tokenizer, [e.prompt for e in chunk], rollout, with_logprobs=False)
        correct = torch.tensor([task.verify(text, chunk[int(i)].answer) == Verdict.CORRECT
                                for text, i in zip(batch.texts, batch.prompt_index)], dtype=torch.float32)
        rates += correct.view(len(chunk), cfg.k).mean(dim=1).tolist()  # rows are grouped by prompt
        logits = response_logits(model, batch.input_ids, batch.attention_mask, batch.response_start,
                                 temperature=cfg.temperature)
        s, c = _masked_mean(token_entropy(logits), batch.response_mask)
        ent_sum, ent_count = ent_sum + s, ent_count + c
        batches.append(batch)
    return ModelScores(rates, ent_sum / max(ent_count, 1.0), batches)


@torch.no_grad()
def cross_loglik(scorer: Any, batches: Sequence[RolloutBatch]) -> float:
    """Mean per-token log-likelihood under ``scorer`` of responses sampled by another model (0 if none)."""
    scorer.eval()
    total = count = 0.0
    for batch in batches:
        logp = sequence_logprobs(scorer, batch.input_ids, batch.attention_mask, batch.response_start)
        s, c = _masked_mean(logp, batch.response_mask)
        total, count = total + s, count + c
    return total / max(count, 1.0)


def keep_prompt(student_rate: float, teacher_rate: float, cfg: ScoringConfig) -> bool:
    """The prompt filter of the module docstring.

    A threshold set to None disables that side of the filter.

    >>> cfg = ScoringConfig()          # drop: student 4/4, or teacher 0/4
    >>> keep_prompt(1.0, 1.0, cfg), keep_prompt(0.5, 0.0, cfg), keep_prompt(0.25, 0.75, cfg)
    (False, False, True)
    >>> keep_prompt(0.5, 0.0, ScoringConfig(teacher_solved_at_most=None))
    True
    """
    student_ok = cfg.student_solved_at_least is None or student_rate < cfg.student_solved_at_least
    teacher_ok = cfg.teacher_solved_at_most is None or teacher_rate > cfg.teacher_solved_at_most
    return student_ok and teacher_ok
