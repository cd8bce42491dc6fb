"""Outcome rewards from the verifier: a format term plus an answer term (Logic-RL style by default).

Logic-RL (Xie et al. 2025, "Logic-RL: Unleashing LLM Reasoning with Rule-Based Reinforcement Learning", its
rule-based K&K reward): ``S = S_format + S_answer`` with ``S_format = +1`` when the think/answer format is
right and ``-1`` otherwise, and ``S_answer = +2`` for a correct answer, ``-1.5`` for a wrong one and ``-2``
when no answer can be parsed; as in Logic-RL the answer is only judged when the format is right
(``answer_requires_format``), otherwise it scores as unparseable. The format accepts one or several
think-answer cycles (R-TAP), up to ``max_cycles``. Every function here is total: any string gives a reward.

``answer_requires_trace`` [choice, beyond Logic-RL]: on tasks with a checkable trace (K&K), a right answer that the
reply's own trace did not reach (an empty ``<think>``, or a trace that accepted another candidate) scores as
``answer_wrong``: a guess earns nothing a derivation would not.
"""

from __future__ import annotations

import dataclasses

from rl_distill.tasks.base import Task, Verdict
from rl_distill.tasks.format import is_well_formed
from rl_distill.typed_config import check_range


@dataclasses.dataclass(frozen=True)
class OutcomeRewardConfig:
    """Reward values per outcome (defaults: Logic-RL). ``max_cycles=None`` accepts any number of cycles."""

    format_ok: float = 1.0
    format_bad: float = -1.0
    answer_correct: float = 2.0
    answer_wrong: float = -1.5
    answer_unparseable: float = -2.0
    answer_requires_format: bool = True
    answer_requires_trace: bool = False
    max_cycles: int | None = None

    def __post_init__(self) -> None:
        if self.max_cycles is not None:
            check_range("max_cycles", self.max_cycles, 1)


@dataclasses.dataclass(frozen=True)
class RewardBreakdown:
    """The two reward terms of one completion and what they were based on."""

    format_ok: bool
    verdict: Verdict
    format_reward: float
    answer_reward: float

    @property
    def total(self) -> float:
        return self.format_reward + self.answer_reward

    @property
    def correct(self) -> bool:
        return self.verdict is Verdict.CORRECT


def score_completion(completion: str, answer: str, task: Task,
                     cfg: OutcomeRewardConfig | None = None) -> RewardBreakdown:
    """Format check and verdict of ``completion`` against the canonical ``answer``.

    ``verdict`` is the verifier's verdict even when the format is bad (for accuracy metrics); the answer
    reward follows ``answer_requires_format``.

    >>> from rl_distill.tasks.arithmetic import ArithmeticTask
    >>> task = ArithmeticTask()
    >>> score_completion("<think>7+5+0=12 =12</think><answer>12</answer>", "12", task).total
    3.0
    >>> score_completion("<think>x</think><answer>13</answer>", "12", task).total  # 1 - 1.5
    -0.5
    >>> score_completion("12", "12", task).total  # bad format: -1, answer not judged: -2
    -3.0
    >>> from rl_distill.tasks.knights_knaves import KnightsKnavesTask
    >>> guess = "<think></think><answer>Ab</answer>"
    >>> score_completion(guess, "Ab", KnightsKnavesTask()).total, score_completion(
    ...     guess, "Ab", KnightsKnavesTask(), OutcomeRewardConfig(answer_requires_trace=True)).total  # 1 + 2, 1 - 1.5
    (3.0, -0.5)
    """
    cfg = cfg or OutcomeRewardConfig()
    try:
        format_ok = is_well_formed(completion, cfg.max_cycles)
    except Exception:  # pragma: no cover - is_well_formed is total; belt and braces for arbitrary text
        format_ok = False
    verdict = task.verify(completion, answer)
    judged = verdict if (format_ok or not cfg.answer_requires_format) else Verdict.UNPARSEABLE
    if judged is Verdict.CORRECT and cfg.answer_requires_trace and task.trace_consistent(completion) is False:
        judged = Verdict.WRONG  # a right guess the trace does not support
    answer_reward = {
        Verdict.CORRECT: cfg.answer_correct,
        Verdict.WRONG: cfg.answer_wrong,
        Verdict.UNPARSEABLE: cfg.answer_unparseable,
    }[judged]
    return RewardBreakdown(
        format_ok=format_ok,
        verdict=verdict,
        format_reward=cfg.format_ok if format_ok else cfg.format_bad,
        answer_reward=answer_reward,
    )


def outcome_reward(completion: str, answer: str, task: Task, cfg: OutcomeRewardConfig | None = None) -> float:
    """Total outcome reward (format + answer) of one completion; see :func:`score_completion`.

    >>> from rl_distill.tasks.knights_knaves import KnightsKnavesTask
    >>> outcome_reward("<think>AB A:b0 x</think><answer>Ab</answer>", "Ab", KnightsKnavesTask())
    3.0
    >>> outcome_reward("<think></think><answer>nonsense</answer>", "Ab", KnightsKnavesTask())  # 1 - 2
    -1.0
    """
    return score_completion(completion, answer, task, cfg).total
