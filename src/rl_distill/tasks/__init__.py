"""Reasoning tasks with exact verifiers: generators/loaders, think-answer format, parsing, rewards.

Pure Python (standard library; math-verify and datasets only for real data files, imported lazily).
"""

from rl_distill.tasks.base import PROMPT_END, Example, Task, Verdict
from rl_distill.tasks.format import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    Cycle,
    final_answer,
    is_well_formed,
    parse_cycles,
)
from rl_distill.tasks.oops import OOPS_LEXICON, count_oops
from rl_distill.tasks.registry import TASKS, get_task
from rl_distill.tasks.rewards import OutcomeRewardConfig, RewardBreakdown, outcome_reward, score_completion

__all__ = [
    "ANSWER_CLOSE", "ANSWER_OPEN", "OOPS_LEXICON", "PROMPT_END", "TASKS", "THINK_CLOSE", "THINK_OPEN",
    "Cycle", "Example", "OutcomeRewardConfig", "RewardBreakdown", "Task", "Verdict", "count_oops",
    "final_answer", "get_task", "is_well_formed", "outcome_reward", "parse_cycles", "score_completion",
]
