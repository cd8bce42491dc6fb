"""R-TAP's engine plug-ins on scripted cycles: the recursive rollout engine and the reward function, hand-computed
(R-TAP, arXiv 2603.02099, Algorithm 1)."""

from __future__ import annotations

import pytest
import torch

from rl_distill.rollout.base import RolloutConfig
from rl_distill.rtap.confidence import ConfidenceGenerator
from rl_distill.rtap.config import RTAPConfig
from rl_distill.rtap.rewards import RTAPRewardConfig
from rl_distill.rtap.step import RecursiveRolloutEngine, RTAPRewardFn, answer_lookup, kept_confidences
from rl_distill.tasks.base import Example

from .conftest import ANSWERS, SCRIPT


def _examples() -> list[Example]:
    return [Example(id=str(i), task="arithmetic", difficulty=1, prompt=p, trace="", answer=ANSWERS[p])
            for i, p in enumerate(SCRIPT)]


def test_reward_fn_on_scripted_rollout(scripted, model, tokenizer, task) -> None:
    examples = _examples()
    engine = RecursiveRolloutEngine(task, answer_lookup(examples), max_cycles=3)
    generator = ConfidenceGenerator.from_policy(model, tokenizer)  # zero head: every Conf(t) = 0.5
    cfg = RTAPConfig(rewards=RTAPRewardConfig(max_length=1000, cache_length=10))
    reward_fn = RTAPRewardFn(engine, generator, cfg)
    batch = engine.generate(model, tokenizer, list(SCRIPT), RolloutConfig(group_size=1, max_new_tokens=40))
    head_before = generator.model.head.weight.detach().clone()
    rewards, metrics = reward_fn(batch.texts, examples)
    # Conf = 0.5 everywhere: no strict rise (R_increase 0 unless right at once), 0.5 < tau = 0.55 (R_final 0).
    #   1+2: M=1 right     -> inc 1 + fin 0 + fmt 1 + ans 1 + len 0 = 3
    #   2+2: M=2           -> 0 + 0 + 1 + 1 + 0 = 2
    #   3+3: M=3 never     -> 0 + 0 + 1 + 0 + 0 = 1
    #   4+4: M=1 but wrong -> 0 + 0 + 1 + 0 + 0 = 1
    #   4+5: M=2, cycle 2 cut by the token cap is malformed -> 0 + 0 + 0 + 0 + 0 = 0
    assert rewards.tolist() == pytest.approx([3.0, 2.0, 1.0, 1.0, 0.0])
    assert float(metrics["r_answer"]) == pytest.approx(0.4)
    assert float(metrics["accuracy"]) == pytest.approx(0.4)
    assert float(metrics["m_mean"]) == pytest.approx((1 + 2 + 3 + 1 + 2) / 5)
    assert metrics["first_cycle_accuracy"] == pytest.approx(0.2)
    assert metrics["conf_mean"] == pytest.approx(0.5)
    assert "conf_update_loss" in metrics  # C_phi trained on the 9 fresh cycles (2 right, 7 wrong) ...
    assert not torch.equal(generator.model.head.weight, head_before)  # ... after the rewards were computed


def test_reward_fn_refuses_a_foreign_batch(scripted, model, tokenizer, task) -> None:
    examples = _examples()
    engine = RecursiveRolloutEngine(task, answer_lookup(examples), max_cycles=3)
    reward_fn = RTAPRewardFn(engine, ConfidenceGenerator.from_policy(model, tokenizer), RTAPConfig())
    with pytest.raises(RuntimeError, match="out of step"):
        reward_fn(["<think>1</think><answer>1</answer>"], examples[:1])


def test_engine_needs_known_prompts(model, tokenizer, task) -> None:
    engine = RecursiveRolloutEngine(task, {"1+2\n": "3"}, max_cycles=2)
    with pytest.raises(KeyError, match="no answer known"):
        engine.generate(model, tokenizer, ["5+5\n"], RolloutConfig(group_size=1))


def test_engine_takes_old_logprobs_from_the_sampler(model, tokenizer, task) -> None:
    engine = RecursiveRolloutEngine(task, {"1+2\n": "3"}, max_cycles=2)
    torch.manual_seed(0)
    batch = engine.generate(model, tokenizer, ["1+2\n"], RolloutConfig(group_size=4, max_new_tokens=8),
                            from_sampler=True)
    assert torch.equal(batch.old_logprobs, engine.last.sampled_logprobs)
    assert (batch.old_logprobs[batch.response_mask.bool()] < 0).all()


def test_answer_lookup_rejects_conflicts() -> None:
    a = Example(id="a", task="t", difficulty=1, prompt="p", trace="", answer="1")
    b = Example(id="b", task="t", difficulty=1, prompt="p", trace="", answer="2")
    assert answer_lookup([a, a]) == {"p": "1"}
    with pytest.raises(ValueError, match="two answers"):
        answer_lookup([a, b])


def test_kept_confidences_pads_past_m() -> None:
    out = kept_confidences([[0.1, 0.2, 0.3], [0.4]], torch.tensor([2, 1]), max_cycles=3)
    assert torch.allclose(out, torch.tensor([[0.1, 0.2, 0.0], [0.4, 0.0, 0.0]]))
