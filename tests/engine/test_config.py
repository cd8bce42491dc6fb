"""TrainConfig: defaults, validation at load with messages naming the key and the fix."""

from __future__ import annotations

import pytest

from rl_distill.engine.config import TrainConfig
from rl_distill.typed_config import ConfigError, from_dict


def test_defaults_build():
    cfg = from_dict(TrainConfig, {})
    assert cfg.loss.name == "grpo" and not cfg.is_sft
    assert cfg.rollout.engine == "hf" and cfg.rollout.group_size == 8
    assert cfg.steps_for(1000) == cfg.total_steps


@pytest.mark.parametrize(("data", "error", "fragment"), [
    ({"total_step": 3}, ConfigError, "unknown key 'total_step'. Did you mean 'total_steps'"),
    ({"optimizer": {"learning_rate": 1}}, ConfigError, "train.optimizer: unknown key 'learning_rate'"),
    ({"optimizer": {"lr": 0}}, ConfigError, "lr=0.0 is out of range"),
    ({"schedule": {"decay": "cos"}}, ConfigError, "Did you mean 'cosine'"),
    ({"loss": {"name": "rlda"}}, ConfigError, "train.loss: name='rlda': unknown policy loss 'rlda'. Did you mean"),
    ({"optimizer": {"lr": float("inf")}}, ConfigError, r"train.optimizer.lr=inf is not a finite number"),
    ({"optimizer": {"lr": float("nan")}}, ConfigError, r"train.optimizer.lr=nan is not a finite number"),
    ({"max_grad_norm": float("-inf")}, ConfigError, r"train.max_grad_norm=-inf is not a finite number"),
    ({"loss": {"name": "rlad", "config": {"alfa": 0.3}}}, ConfigError, "unknown key 'alfa'"),
    ({"advantage": "grpoo"}, ConfigError, "advantage='grpoo' is not valid"),
    ({"mu": 0}, ConfigError, "mu=0 is out of range"),
    ({"rollout": {"temperature": 0.0}}, ConfigError, "RL needs temperature > 0"),
    ({"rollout": {"group_size": 0}}, ConfigError, "group_size"),
    ({"validation": {"every": -1}}, ConfigError, "every=-1"),
    ({"checkpoint": {"keep_last": 0}}, ConfigError, "keep_last"),
    ({"reward": {"format_good": 1}}, ConfigError, "unknown key 'format_good'"),
    ({"teacher_dtype": "bf16"}, ConfigError, "teacher_dtype='bf16' is not valid"),
    ({"concurrent_scoring": "yes"}, ConfigError, "concurrent_scoring='yes' is not valid"),
])
def test_bad_values_are_named(data, error, fragment):
    with pytest.raises(error, match=fragment):
        from_dict(TrainConfig, data, where="train")


def test_sft_mode_and_epochs():
    cfg = from_dict(TrainConfig, {"loss": {"name": "sft"}, "sft": {"batch_size": 8, "epochs": 1.5},
                                  "rollout": {"temperature": 0.0}})
    assert cfg.is_sft
    assert cfg.steps_for(100) == 19  # ceil(1.5 * 100 / 8) = ceil(18.75)
