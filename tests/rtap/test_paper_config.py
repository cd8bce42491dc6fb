"""R-TAP's settings: the paper's (arXiv 2603.02099, Sec. 4) are reachable as ``kedro run --env rtap_paper``, the
CPU-sized ones are conf/base, and the table in rl_distill.rtap.config's docstring states both truly (issue 19)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rl_distill.rtap.config as rtap_config_module
from rl_distill.pipelines.rtap.nodes import rtap_config
from rl_distill.rtap.config import RTAPConfig

CONF = Path(__file__).resolve().parents[2] / "conf"
COLUMNS = {"paper": 1, "rtap_paper": 2, "base": 3}


def _effective(env: str) -> RTAPConfig:
    from kedro.config import OmegaConfigLoader

    from rl_distill.settings import CONFIG_LOADER_ARGS

    params = OmegaConfigLoader(conf_source=str(CONF), env=env, **CONFIG_LOADER_ARGS)["parameters"]
    return rtap_config(params["distill"]["common"], params["rtap"], where=f"conf/{env}")


def _table() -> list[tuple[str, list[str]]]:
    rows = []
    for line in (rtap_config_module.__doc__ or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.match(r"``([a-z_.]+)``", cells[0]) if line.startswith("|") else None
        if match:
            rows.append((match.group(1), cells))
    return rows


def _value(cfg: RTAPConfig, path: str) -> float:
    value = cfg
    for part in path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return float(value)


def test_the_table_covers_the_papers_settings() -> None:
    knobs = {path for path, _ in _table()}
    assert {"cycles.max_cycles", "train.rollout.group_size", "train.mu", "confidence.samples_per_question",
            "confidence.lr", "confidence.lr_end", "train.rollout.top_p", "train.rollout.top_k",
            "train.rollout.repetition_penalty", "rewards.tau", "train.loss.config.beta"} <= knobs


@pytest.mark.parametrize("env", ["rtap_paper", "base"])
def test_each_environment_runs_what_the_table_says(env: str) -> None:
    cfg = _effective(env)  # env "base": conf/base alone, whatever conf/local holds
    for path, cells in _table():
        assert _value(cfg, path) == pytest.approx(float(cells[COLUMNS[env]])), (env, path)


def test_the_paper_environment_is_the_paper() -> None:
    for path, cells in _table():
        assert float(cells[COLUMNS["paper"]]) == float(cells[COLUMNS["rtap_paper"]]), path
    cfg = _effective("rtap_paper")
    assert cfg.confidence.max_questions is None  # every training question gets its 128 cycles
    assert cfg.train.old_logprobs != "sampler"  # the repetition penalty shapes the sampler only
