"""The reward hook: ``reward_fn(completions, examples) -> (rewards [N], metrics)``, and its default (outcome reward).

One job: score N decoded responses. The engine calls whatever ``reward_fn`` it is given (R-TAP plugs its own); the
default scores each response with :func:`rl_distill.tasks.rewards.outcome_reward` (format + verified answer) and
reports the fraction verified correct as ``accuracy`` (logged as ``rollout/accuracy``). Metric values are floats or
0-dim tensors with bare names; the engine prefixes ``rollout/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from rl_distill.tasks.base import Example, Task, Verdict
from rl_distill.tasks.rewards import OutcomeRewardConfig, outcome_reward

RewardFn = Callable[[list[str], list[Example]], tuple[Tensor, dict[str, Any]]]


def outcome_reward_fn(task: Task, cfg: OutcomeRewardConfig) -> RewardFn:
    """The default reward: outcome reward per response, plus the verified-correct fraction as ``accuracy``."""

    def reward_fn(completions: Sequence[str], examples: Sequence[Example]) -> tuple[Tensor, dict[str, Any]]:
        rewards = [outcome_reward(text, ex.answer, task, cfg) for text, ex in zip(completions, examples)]
        correct = [task.verify(text, ex.answer) == Verdict.CORRECT for text, ex in zip(completions, examples)]
        accuracy = sum(correct) / max(1, len(correct))
        return torch.tensor(rewards, dtype=torch.float32), {"accuracy": accuracy}

    return reward_fn


def soft_overlong_penalty(lengths: Tensor, max_len: int, cache: int) -> Tensor:
    """DAPO's soft overlong punishment (arXiv 2503.14476, Eq. 13) per response of ``lengths`` [N] tokens:
    0 up to ``max_len - cache``, then linear down to -1 at ``max_len``, -1 beyond.

    >>> soft_overlong_penalty(torch.tensor([10, 16, 18, 20, 25]), max_len=20, cache=4).tolist()
    [0.0, 0.0, -0.5, -1.0, -1.0]
    """
    lengths = lengths.float()
    penalty = (max_len - cache - lengths) / cache
    return penalty.clamp(min=-1.0, max=0.0)
