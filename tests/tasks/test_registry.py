"""Task registry: valid names, helpful errors for unknown names and parameters."""

from __future__ import annotations

import pytest

from rl_distill.registry import UnknownNameError
from rl_distill.tasks.registry import TASKS, get_task
from rl_distill.typed_config import ConfigError


def test_registered_tasks() -> None:
    assert TASKS.names() == ["arithmetic", "jsonl", "knights_knaves"]


def test_unknown_task_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="Valid names: arithmetic, jsonl, knights_knaves"):
        get_task("sudoku")


def test_unknown_parameter_names_the_key() -> None:
    with pytest.raises(ConfigError, match="unknown key 'max_dept'.*Did you mean 'max_depth'"):
        get_task("knights_knaves", max_dept=2)


def test_out_of_range_parameter() -> None:
    with pytest.raises(ConfigError, match="max_depth=3 is out of range"):
        get_task("knights_knaves", max_depth=3)
    with pytest.raises(ConfigError, match="unknown form 'xor'"):
        get_task("knights_knaves", form_weights={"xor": 1.0})
    with pytest.raises(ConfigError, match="unknown operator '-'"):
        get_task("arithmetic", ops=["-"])
    with pytest.raises(ConfigError, match="data_files"):
        get_task("jsonl")
