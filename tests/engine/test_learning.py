"""The loop learns: a short SFT warm start (answer format), then GRPO on 1-digit addition raises the reward."""

from __future__ import annotations

from rl_distill.engine.trainer import train
from rl_distill.models.factory import ModelConfig, build_model

from .conftest import make_config


def test_grpo_raises_the_reward_after_a_short_warm_start(tmp_path, tokenizer, task):
    train_examples, val_examples = task.generate(256, 1, seed=0), task.generate(16, 1, seed=1)
    student = build_model(ModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=128, seed=0), tokenizer)  # 84k parameters
    common = {"train_examples": train_examples, "val_examples": val_examples, "tokenizer": tokenizer, "task": task,
              "progress": False}
    # 60 SFT steps: the format is half learnt, answers mostly wrong (reward about -1.9 of a possible +3).
    sft = make_config(loss={"name": "sft"}, total_steps=60, sft={"batch_size": 32}, mini_batch_size=32,
                      optimizer={"lr": 3e-3}, rollout={"max_new_tokens": 32}, checkpoint={"every": 1000})
    train(policy=student, config=sft, output_dir=tmp_path / "sft", **common)
    grpo = make_config(total_steps=40, prompts_per_step=8, rollout={"group_size": 8, "max_new_tokens": 32},
                       optimizer={"lr": 3e-4}, schedule={"decay": "constant"}, mu=1, mini_batch_size=64,
                       checkpoint={"every": 1000}, seed=1)
    result = train(policy=student, config=grpo, output_dir=tmp_path / "grpo", **common)
    rewards = [value for _, value in result.history["rollout/reward_mean"]]
    first, last = sum(rewards[:8]) / 8, sum(rewards[-8:]) / 8
    # Measured on the dev machine: about -1.85 -> -1.25 for seeds 1-3; require a clear fraction of that.
    assert last > first + 0.25, (first, last, rewards)
