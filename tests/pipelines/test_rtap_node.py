"""The rtap node's choice of stage-1 questions (``rtap.confidence.questions``): the RL prompts, or the training
split's rows of the RL prompts' task family."""

from __future__ import annotations

import polars as pl
import pytest

from rl_distill.pipelines.rtap.nodes import rtap_config, split_questions
from rl_distill.typed_config import ConfigError

RL = pl.DataFrame({"id": ["a", "b"], "task": ["knights_knaves"] * 2})
SPLIT = pl.DataFrame({"id": ["c", "d", "e"], "task": ["knights_knaves", "arithmetic", "knights_knaves"]})


def _cfg(questions: str):
    return rtap_config({}, {"confidence": {"questions": questions}}, where="test")


def test_default_reads_the_rl_prompts() -> None:
    assert split_questions(_cfg("rl_prompts"), RL, SPLIT) is None  # no split: stage 1 reads the RL prompts


def test_split_keeps_the_rl_task_family_only() -> None:
    assert split_questions(_cfg("train_examples"), RL, SPLIT)["id"].to_list() == ["c", "e"]


def test_split_without_the_family_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"no example of the RL prompts' task \['knights_knaves'\].*rl_prompts"):
        split_questions(_cfg("train_examples"), RL, SPLIT.filter(pl.col("task") == "arithmetic"))
