"""The ``tuning`` parameter block: the YAML files load; bad input fails with a message naming the value."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import yaml

import rl_distill.tuning.best
import rl_distill.tuning.factories
from rl_distill.tuning import PRUNERS, SAMPLERS, TuningConfig, load_tuning_config
from rl_distill.typed_config import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize("env", ["base", "smoke"])
def test_yaml_block_loads(env: str) -> None:
    block = yaml.safe_load((CONF / env / "parameters_tuning.yml").read_text())["tuning"]
    cfg = load_tuning_config(block)
    assert cfg.metric == "val/accuracy"
    assert cfg.search_space["alpha"].low == 0.0 and cfg.search_space["alpha"].high == 1.0
    assert cfg.storage_path.startswith("data/")


def test_defaults_live_in_the_dataclass() -> None:
    cfg = load_tuning_config({})
    assert cfg == TuningConfig()
    assert (cfg.sampler.name, cfg.pruner.name, cfg.direction) == ("tpe", "median", "maximize")


def test_registries_list_samplers_and_pruners() -> None:
    assert {"tpe", "random", "qmc", "grid"} <= set(SAMPLERS.names())
    pruners = {"median", "percentile", "hyperband", "successive_halving", "threshold", "none"}
    assert pruners <= set(PRUNERS.names())


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"search_space": {"alpha": {"low": -0.1, "high": 1.0}}}, "search_space.alpha.low=-0.1"),
        ({"search_space": {"alpha": {"low": 0.0, "high": 1.5}}}, "search_space.alpha.high=1.5"),
        ({"search_space": {"alpha": {"low": 0.8, "high": 0.2}}}, "low=0.8 > high=0.2"),
        ({"search_space": {"beta": {"low": 0.0, "high": 1.0}}}, "'beta'"),
        ({"search_space": {}}, "search_space is empty"),
        ({"search_space": {"eps_high": {"low": 0.0, "high": 0.3}}}, "search_space.eps_high.low=0.0"),
        ({"search_space": {"lr": {"low": 0.0, "high": 1e-3, "log": True}}}, "low=0.0"),
        ({"search_space": {"alpha": {"low": 0.1, "high": 0.9, "step": 0.2, "log": True}}},
         "cannot be combined"),
        ({"search_space": {"alpha": {"low": 0.0, "high": 1.0, "stepp": 0.1}}}, "'stepp'"),
        ({"sampler": {"name": "tpee"}}, "'tpee'"),
        ({"pruner": {"name": "medain"}}, "'medain'"),
        ({"sampler": {"name": "tpe", "kwargs": {"n_startup_trails": 3}}}, "n_startup_trails"),
        ({"sampler": {"name": "tpe", "kwargs": {"seed": 3}}}, "tuning.seed"),
        ({"sampler": {"name": "grid"}}, "search_space.alpha.step is null"),
        ({"pruner": {"name": "percentile", "kwargs": {"percentile": 150.0}}}, "150"),
        ({"metric": "test/accuracy"}, "'test/accuracy'"),
        ({"n_trials": 0}, "n_trials=0"),
        ({"eval_every": 50, "steps_per_trial": 40}, "eval_every=50"),
        ({"direction": "maximise"}, "'maximise'"),
        ({"n_trial": 5}, "'n_trial'"),
        ({"storage_path": "data/study.sqlite"}, "'data/study.sqlite'"),
    ],
)
def test_bad_input_names_the_value(block: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_tuning_config(block, where="conf/base/parameters_tuning.yml:tuning")
    assert expected in str(err.value)
    assert str(err.value).startswith("conf/base/parameters_tuning.yml:tuning")


def test_unknown_sampler_suggests_the_close_name() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'tpe'"):
        load_tuning_config({"sampler": {"name": "tpee"}})


def test_grid_and_log_ranges_accepted() -> None:
    cfg = load_tuning_config({
        "sampler": {"name": "grid"},
        "search_space": {"alpha": {"low": 0.1, "high": 0.9, "step": 0.2}},
    })
    assert cfg.search_space["alpha"].step == 0.2
    cfg = load_tuning_config({"search_space": {"alpha": {"low": 0.0, "high": 1.0},
                                               "lr": {"low": "1e-4", "high": "3e-3", "log": True}}})
    assert cfg.search_space["lr"].low == 1e-4  # YAML may read 1e-4 as a string


@pytest.mark.parametrize("module", [rl_distill.tuning.best, rl_distill.tuning.factories])
def test_doctests(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(("block", "message"), [
    ({"method": "rlda"}, r"method='rlda' is not a registered distill method"),
    ({"method": "grpo", "search_space": {"alpha": {"low": 0.0, "high": 1.0}}},
     r"search_space.alpha: method 'grpo' does not tune 'alpha'; its tunable parameters: eps_high, lr"),
])
def test_the_search_space_must_be_tunable_for_the_method(block: dict, message: str) -> None:
    from rl_distill.tuning import validate_tuning_block

    with pytest.raises(ConfigError, match=message):
        validate_tuning_block(block, "parameters_tuning.yml:tuning")
    validate_tuning_block({"method": "grpo", "search_space": {"eps_high": {"low": 0.2, "high": 0.4},
                                                               "lr": {"low": 1e-4, "high": 1e-3}}}, "tuning")
