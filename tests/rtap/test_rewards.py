"""R-TAP rewards on hand-computed cases (arXiv 2603.02099, Sec. 3; method.md section 5)."""

from __future__ import annotations

import pytest
import torch

from rl_distill.rtap.rewards import (
    RTAPRewardConfig,
    final_reward,
    increase_reward,
    length_reward,
    rtap_rewards,
)
from rl_distill.typed_config import ConfigError


def test_increase_reward_m1_is_one() -> None:
    # M = 1: the first cycle is correct, R_increase = 1 whatever the confidences.
    conf = torch.tensor([[0.9, 0.1, 0.1, 0.1], [0.1, 0.9, 0.8, 0.7]])
    assert increase_reward(conf, torch.tensor([1, 1])).tolist() == [1.0, 1.0]


def test_increase_reward_lone_wrong_cycle_gets_nothing() -> None:
    # M = 1 because the policy stopped after one wrong cycle: no transition rose -> 0 (with the correctness guard);
    # a correct first cycle keeps its 1; without the guard the formula as written gives 1 to both.
    conf = torch.tensor([[0.2, 0.0], [0.9, 0.0]])
    m = torch.tensor([1, 1])
    assert increase_reward(conf, m, torch.tensor([False, True])).tolist() == [0.0, 1.0]
    assert increase_reward(conf, m).tolist() == [1.0, 1.0]


def test_increase_reward_rising_and_falling() -> None:
    conf = torch.tensor([
        [0.1, 0.2, 0.3, 0.4],  # M = 4, rises 0.1<0.2, 0.2<0.3, 0.3<0.4 -> 3/3 = 1
        [0.4, 0.3, 0.2, 0.1],  # M = 4, all fall -> 0/3 = 0
        [0.2, 0.5, 0.4, 0.9],  # M = 4, rise, fall, rise -> 2/3
        [0.2, 0.5, 0.4, 0.9],  # M = 3: transitions 1->2 (rise), 2->3 (fall) -> 1/2; 3->4 ignored
        [0.5, 0.5, 0.1, 0.1],  # M = 2: 0.5 -> 0.5 is not a strict rise -> 0/1
    ])
    m = torch.tensor([4, 4, 4, 3, 2])
    got = increase_reward(conf, m)
    assert got.tolist() == pytest.approx([1.0, 0.0, 2 / 3, 0.5, 0.0])


def test_increase_reward_rejects_m_out_of_range() -> None:
    with pytest.raises(ValueError, match="M must be"):
        increase_reward(torch.zeros(1, 4), torch.tensor([5]))


def test_final_reward_tau_boundary() -> None:
    # Conf(M) = 0.55 equals tau -> 1 (>=); 0.5499 -> 0; Conf(M) is picked at M, not at the last column.
    conf = torch.tensor([[0.55, 0.0], [0.5499, 0.99], [0.1, 0.56]])
    assert final_reward(conf, torch.tensor([1, 1, 2]), tau=0.55).tolist() == [1.0, 0.0, 1.0]


def test_length_reward_soft_overlong() -> None:
    # L_max = 100, L_cache = 20: 0 up to 80, then (80 - L) / 20, -1 from 100 on.
    lengths = torch.tensor([10, 80, 90, 95, 100, 130])
    expected = [0.0, 0.0, -0.5, -0.75, -1.0, -1.0]
    assert length_reward(lengths, 100, 20).tolist() == pytest.approx(expected)
    # No cache: a hard -1 above L_max only.
    assert length_reward(torch.tensor([100, 101]), 100, 0).tolist() == [0.0, -1.0]


def test_rtap_rewards_components_and_total() -> None:
    cfg = RTAPRewardConfig(max_length=100, cache_length=20, w_length=2.0)
    conf = torch.tensor([[0.3, 0.6, 0.0], [0.7, 0.0, 0.0]])
    m = torch.tensor([2, 1])
    formed = torch.tensor([[True, True, False], [False, True, True]])  # row 0: cycle 3 is cut and ignored
    out = rtap_rewards(conf=conf, m=m, cycles_well_formed=formed, num_kept_cycles=m,
                       answer_correct=torch.tensor([True, False]), lengths=torch.tensor([50, 90]), cfg=cfg)
    assert out.r_increase.tolist() == [1.0, 0.0]  # row 0: 0.3 < 0.6 -> 1/1; row 1: M = 1 but wrong -> 0
    assert out.r_final.tolist() == [1.0, 1.0]  # 0.6 >= 0.55, 0.7 >= 0.55
    assert out.r_format.tolist() == [1.0, 0.0]  # row 1's only kept cycle is malformed
    assert out.r_answer.tolist() == [1.0, 0.0]
    assert out.r_length.tolist() == pytest.approx([0.0, -0.5])  # (80 - 90) / 20
    # totals: 1 + 1 + 1 + 1 + 2*0 = 4 ; 0 + 1 + 0 + 0 + 2*(-0.5) = 0
    assert out.total.tolist() == pytest.approx([4.0, 0.0])
    names = set(out.metrics())
    assert names == {"rollout/r_increase", "rollout/r_final", "rollout/r_format", "rollout/r_answer",
                     "rollout/r_length"}


def test_reward_config_validation() -> None:
    with pytest.raises(ConfigError, match="tau"):
        RTAPRewardConfig(tau=1.5)
    with pytest.raises(ConfigError, match="cache_length"):
        RTAPRewardConfig(max_length=10, cache_length=20)
