"""Validation accuracy: generate one answer per example and verify it, overall and per difficulty.

One job: how often a model answers held-out examples correctly. Greedy by default (``temperature = 0``); examples
are batched by (difficulty, prompt length) so a generate batch does not run to the longest puzzle of the set.
:func:`evaluate_counts` returns raw counts (so several processes can sum them); :func:`evaluate_accuracy` the rates.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

import torch

from rl_distill.rollout.base import RolloutConfig, RolloutEngine, build_rollout_engine
from rl_distill.tasks.base import Example, Task, Verdict


def validation_subset(examples: Sequence[Example], max_examples: int | None, seed: int = 0) -> list[Example]:
    """At most ``max_examples`` of ``examples``, drawn round-robin over difficulty levels after a seeded shuffle.

    The split lists its levels one after another, so its first ``max_examples`` rows would validate on the easiest
    level only; here every level keeps about ``max_examples / levels`` examples (all of a smaller level), and a level
    made of several subsets (plain and nested n = 3) is sampled from all of them. Same inputs, same subset.
    """
    if max_examples is None or len(examples) <= max_examples:
        return list(examples)
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    seen: dict[int, int] = {}
    ranked = []  # (rank of the example within its level, level, example)
    for ex in shuffled:
        seen[ex.difficulty] = seen.get(ex.difficulty, 0) + 1
        ranked.append((seen[ex.difficulty], ex.difficulty, ex))
    ranked.sort(key=lambda row: row[:2])  # stable: ties keep the shuffled order
    return [ex for *_, ex in ranked[:max_examples]]


def evaluate_counts(model: torch.nn.Module, tokenizer: Any, task: Task, examples: Sequence[Example],
                    cfg: RolloutConfig, *, batch_size: int = 64,
                    engine: RolloutEngine | None = None) -> dict[int, list[int]]:
    """``{difficulty: [correct, total, response_tokens]}`` over ``examples`` (one sample each; ``cfg.group_size``
    is ignored)."""
    engine = engine or build_rollout_engine(cfg)
    single = dataclasses.replace(cfg, group_size=1)
    ordered = sorted(examples, key=lambda ex: (ex.difficulty, len(ex.prompt)))
    counts: dict[int, list[int]] = {}
    for lo in range(0, len(ordered), batch_size):
        chunk = ordered[lo:lo + batch_size]
        batch = engine.generate(model, tokenizer, [ex.prompt for ex in chunk], single, with_logprobs=False)
        lengths = batch.response_lengths.tolist()
        for ex, text, length in zip(chunk, batch.texts, lengths):
            entry = counts.setdefault(ex.difficulty, [0, 0, 0])
            entry[0] += int(task.verify(text, ex.answer) == Verdict.CORRECT)
            entry[1] += 1
            entry[2] += int(length)
    return counts


def summarize_counts(counts: dict[int, list[int]]) -> dict[str, float]:
    """Rates from :func:`evaluate_counts`: ``accuracy``, ``n``, ``response_len_mean`` and ``accuracy/d<k>``."""
    correct = sum(c[0] for c in counts.values())
    total = sum(c[1] for c in counts.values())
    tokens = sum(c[2] for c in counts.values())
    out = {"accuracy": correct / total if total else 0.0, "n": float(total),
           "response_len_mean": tokens / total if total else 0.0}
    for difficulty in sorted(counts):
        c, n, _ = counts[difficulty]
        out[f"accuracy/d{difficulty}"] = c / n if n else 0.0
    return out


def evaluate_accuracy(model: torch.nn.Module, tokenizer: Any, task: Task, examples: Sequence[Example],
                      cfg: RolloutConfig, *, batch_size: int = 64,
                      engine: RolloutEngine | None = None) -> dict[str, float]:
    """Accuracy of ``model`` on ``examples``: ``{"accuracy", "n", "response_len_mean", "accuracy/d<k>"...}``."""
    return summarize_counts(evaluate_counts(model, tokenizer, task, examples, cfg, batch_size=batch_size,
                                            engine=engine))
