"""A tiny end-to-end R-TAP run (stage 1 + a few GRPO steps through the shared engine) and the config's validation
(R-TAP, arXiv 2603.02099, Algorithm 1)."""

from __future__ import annotations

import math

import pytest

from rl_distill.models.factory import ModelConfig, build_model
from rl_distill.models.tokenizer import build_tokenizer
from rl_distill.rtap.confidence import ConfidenceGenerator
from rl_distill.rtap.config import RTAPConfig
from rl_distill.rtap.train import stage2_train_config, train_rtap
from rl_distill.tasks.registry import get_task
from rl_distill.typed_config import ConfigError, from_dict

TINY = {
    "cycles": {"max_cycles": 2},
    "confidence": {"samples_per_question": 2, "max_questions": 8, "epochs": 1, "batch_size": 8,
                   "eval_samples_per_question": 2, "eval_max_questions": 4, "update_steps": 1},
    "rewards": {"max_length": 48, "cache_length": 8},
    "train": {"total_steps": 2, "prompts_per_step": 2, "rollout": {"group_size": 2, "max_new_tokens": 16},
              "loss": {"name": "grpo", "config": {"eps_low": 0.2, "eps_high": 0.2, "beta": 0.04, "compile": False}},
              "mu": 1, "mini_batch_size": 8, "validation": {"every": 0, "max_examples": 4, "batch_size": 4},
              "checkpoint": {"every": 100}},
}


def test_defaults_follow_the_paper_where_they_can() -> None:
    cfg = RTAPConfig()
    assert cfg.cycles.max_cycles == 4 and cfg.rewards.tau == 0.55
    assert cfg.train.loss.name == "grpo"
    assert cfg.train.loss.config == {"eps_low": 0.2, "eps_high": 0.2, "beta": 0.04}
    assert cfg.confidence_update_steps == cfg.train.mu  # Algorithm 1: C_phi updated alongside the policy
    assert cfg.confidence_update_lr == cfg.confidence.lr_end
    # validation is free generation capped at T cycles of the per-cycle budget (+ eos): 4 * 160 + 1
    assert stage2_train_config(cfg).validation.max_new_tokens == 641


def test_config_rejects_unknown_keys_and_sft() -> None:
    with pytest.raises(ConfigError, match="unknown key 'tua'"):
        from_dict(RTAPConfig, {"rewards": {"tua": 0.5}}, where="parameters_rtap.yml:rtap")
    with pytest.raises(ConfigError, match="sft"):
        from_dict(RTAPConfig, {"train": {"loss": {"name": "sft"}}})


def test_train_rtap_tiny_end_to_end(tmp_path) -> None:
    task = get_task("arithmetic", ops=["+"])
    tokenizer = build_tokenizer(task.alphabet)
    policy = build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2), tokenizer)
    cfg = from_dict(RTAPConfig, TINY, where="test")
    logs, conf_logs = [], []
    result = train_rtap(policy=policy, tokenizer=tokenizer, task=task, train_examples=task.generate(8, 1, seed=0),
                        val_examples=task.generate(4, 1, seed=1), config=cfg, output_dir=tmp_path,
                        log_fn=lambda m, s: logs.append((s, m)),
                        confidence_log_fn=lambda m, s: conf_logs.append((s, m)), progress=False)
    assert result.train.final_step == 2
    assert [s for s, _ in logs] == [1, 2]
    for name in ("rollout/r_increase", "rollout/r_final", "rollout/r_format", "rollout/r_answer",
                 "rollout/r_length", "rollout/reward_mean", "train/loss", "rollout/conf_update_loss"):
        assert name in logs[0][1], name
    assert "val/accuracy" in logs[-1][1]
    assert {"confidence/auroc", "confidence/ece", "confidence/train_cycles"} <= set(result.confidence_metrics)
    assert "confidence/train_loss" in conf_logs[0][1]
    assert all(math.isfinite(v) for _, m in conf_logs for v in m.values())
    assert (result.train.final_model_dir / "config.json").exists()
    loaded = ConfidenceGenerator.load(result.confidence_dir, tokenizer)
    assert loaded.score(["1+2\n"], ["<think>1</think><answer>3</answer>"]).shape == (1,)
    assert (result.confidence_stage1_dir / "stage1_metrics.json").exists()


class _Stage1Reached(Exception):
    pass


@pytest.mark.parametrize("questions", ["rl_prompts", "train_examples"])
def test_stage1_draws_the_questions_the_config_names(monkeypatch, tmp_path, questions) -> None:
    """``confidence.questions`` picks stage 1's questions: the RL prompts, or the training split passed as
    ``split_examples`` (stage 2 trains on the RL prompts either way)."""
    import rl_distill.rtap.train as rtap_train

    task = get_task("arithmetic", ops=["+"])
    tokenizer = build_tokenizer(task.alphabet)
    policy = build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2), tokenizer)
    rl, split = task.generate(4, 1, seed=0), task.generate(12, 1, seed=2)
    seen: list[list[str]] = []

    def spy(policy_, tokenizer_, task_, questions_, *args, **kwargs):
        seen.append([ex.id for ex in questions_])
        raise _Stage1Reached

    monkeypatch.setattr(rtap_train, "train_confidence_generator", spy)
    cfg = from_dict(RTAPConfig, {**TINY, "confidence": {**TINY["confidence"], "questions": questions}}, where="test")
    with pytest.raises(_Stage1Reached):
        train_rtap(policy=policy, tokenizer=tokenizer, task=task, train_examples=rl,
                   val_examples=task.generate(4, 1, seed=1), config=cfg, output_dir=tmp_path, progress=False,
                   split_examples=split)
    assert seen == [[ex.id for ex in (rl if questions == "rl_prompts" else split)]]


def test_stage1_from_the_split_needs_the_split(tmp_path) -> None:
    task = get_task("arithmetic", ops=["+"])
    tokenizer = build_tokenizer(task.alphabet)
    policy = build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2), tokenizer)
    cfg = from_dict(RTAPConfig, {**TINY, "confidence": {**TINY["confidence"], "questions": "train_examples"}},
                    where="test")
    with pytest.raises(ValueError, match="no split_examples were given"):
        train_rtap(policy=policy, tokenizer=tokenizer, task=task, train_examples=task.generate(4, 1, seed=0),
                   val_examples=task.generate(4, 1, seed=1), config=cfg, output_dir=tmp_path, progress=False)
    assert not (tmp_path / "confidence_stage1").exists()  # failed before any work
    with pytest.raises(ConfigError, match=r"questions='pool' is not valid.*rl_prompts, train_examples"):
        from_dict(RTAPConfig, {"confidence": {"questions": "pool"}}, where="parameters_rtap.yml:rtap")


def test_runs_that_share_a_stage1_dir_train_c_phi_once(monkeypatch, tmp_path) -> None:
    """The benchmark's seeds share stage 1 (it reads ``confidence.seed``, not the training seed): the second run
    loads the C_phi the first one saved and reports the same held-out metrics; its own output dir holds none."""
    import dataclasses

    import rl_distill.rtap.train as rtap_train

    task = get_task("arithmetic", ops=["+"])
    tokenizer = build_tokenizer(task.alphabet)
    calls: list[int] = []
    real = rtap_train.train_confidence_generator

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(rtap_train, "train_confidence_generator", counting)
    base = from_dict(RTAPConfig, TINY, where="test")
    results = []
    logged: list[list[tuple[int, dict[str, float]]]] = [[], []]
    for seed in (0, 1):
        policy = build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2), tokenizer)
        cfg = dataclasses.replace(base, train=dataclasses.replace(base.train, seed=seed))
        results.append(train_rtap(policy=policy, tokenizer=tokenizer, task=task,
                                  train_examples=task.generate(8, 1, seed=0), val_examples=task.generate(4, 1, seed=1),
                                  config=cfg, output_dir=tmp_path / f"seed_{seed}", progress=False,
                                  stage1_dir=tmp_path / "shared",
                                  confidence_log_fn=lambda m, s, out=logged[seed]: out.append((s, dict(m)))))
    assert calls == [1]
    # the run that loaded stage 1 logs the same loss curve (and held-out metrics at the same step) as the one that
    # trained it, so every seed's MLflow run shows the curve
    losses = [(s, m["confidence/train_loss"]) for s, m in logged[0] if "confidence/train_loss" in m]
    assert losses
    assert [(s, m.get("confidence/train_loss")) for s, m in logged[1]] == \
        [(s, m.get("confidence/train_loss")) for s, m in logged[0]]
    assert logged[1][-1][0] == logged[0][-1][0] == losses[-1][0] + 1
    first, second = (r.confidence_metrics for r in results)
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] or (math.isnan(first[k]) and math.isnan(second[k])) for k in first)
    assert results[1].confidence_stage1_dir == tmp_path / "shared"
    assert not (tmp_path / "seed_1" / "confidence_stage1").exists()
