"""A short GRPO training that can SIGKILL its own process at a chosen point (issue 17).

``python killed_train.py OUT KILL`` trains into OUT and dies by ``SIGKILL`` (no cleanup, no ``finally``) at KILL:

- ``weights``: inside the step-4 checkpoint write, after the weights file was half written (a torn file);
- ``manifest``: inside the step-4 checkpoint write, after half of the manifest was written, before the rename;
- ``prune``: after the step-4 checkpoint was renamed into place, while older checkpoints are being pruned;
- ``streak``: at step 4, inside a streak of non-finite steps (the rewards of steps 3 and 4 are NaN).

:func:`run` is imported by tests/engine/test_sigkill_resume.py to train the uninterrupted reference and to resume in
the test process. Every run uses the same data, seed and reward (NaN at :data:`NAN_STEPS` in ``streak`` runs).
"""

from __future__ import annotations

import math
import os
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import torch

import rl_distill.engine.checkpointing as checkpointing
import rl_distill.engine.trainer as trainer
import rl_distill.models.checkpoint as checkpoint
from rl_distill.engine.config import TrainConfig
from rl_distill.engine.rewards import outcome_reward_fn
from rl_distill.models.factory import ModelConfig, build_model
from rl_distill.models.tokenizer import alphabet_for, build_tokenizer
from rl_distill.tasks import get_task
from rl_distill.typed_config import from_dict

KILL_STEP = 4
NAN_STEPS = (3, 4)  # a streak of 2, below max_nonfinite_steps=3: the run skips both and goes on
KILLS = ("weights", "manifest", "prune", "streak")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


TASK = get_task("arithmetic", ops=["+"])


def build_student() -> torch.nn.Module:
    """The freshly initialised student every run starts from (seeded: the same weights in every process)."""
    return build_model(ModelConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                   max_position_embeddings=128, seed=0), build_tokenizer(alphabet_for([TASK])))


def run(out: Path, kill: str | None = None, nan_streak: bool = False) -> torch.nn.Module:
    """Train (or resume) into ``out``; returns the final model. ``kill`` (one of :data:`KILLS`) never returns."""
    task = TASK
    tokenizer = build_tokenizer(alphabet_for([task]))
    model = build_student()
    config = from_dict(TrainConfig, {
        "total_steps": 6, "prompts_per_step": 2, "seed": 7, "max_nonfinite_steps": 3,
        "rollout": {"group_size": 4, "max_new_tokens": 10},
        "loss": {"name": "grpo", "config": {"compile": False}},
        "optimizer": {"lr": 1e-2}, "mini_batch_size": 4, "mu": 2,
        "validation": {"every": 0, "max_examples": 4, "batch_size": 4},
        "checkpoint": {"every": 1 if nan_streak else 2, "keep_last": 2},
    }, where="killed_train")
    # A reward that separates the samples from the first step (a fresh model never solves a sum), so every step
    # updates the weights: the outcome reward, plus the fraction of digits in the reply.
    outcome = outcome_reward_fn(task, config.reward)

    def base_reward(completions, rows):
        rewards, metrics = outcome(completions, rows)
        digits = torch.tensor([sum(c.isdigit() for c in text) / max(1, len(text)) for text in completions])
        return rewards + digits, metrics
    step = {"now": 0}
    real_rl_step = trainer.rl_step

    def rl_step(*args, **kwargs):
        step["now"] = args[-1]  # the 1-based step number the trainer passes last
        return real_rl_step(*args, **kwargs)

    def reward_fn(completions, rows):
        if nan_streak and step["now"] in NAN_STEPS:
            if kill == "streak" and step["now"] == KILL_STEP:
                _die()
            return torch.full((len(completions),), math.nan), {}
        return base_reward(completions, rows)

    real_save_hf_dir, real_write_manifest, real_prune = (checkpointing.save_hf_dir, checkpoint.write_manifest,
                                                         checkpointing.prune_checkpoints)

    def torn_weights(model_, tokenizer_, path, *rest):
        real_save_hf_dir(model_, tokenizer_, path, *rest)
        weights = Path(path) / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        _die()

    def torn_manifest(directory, meta=None):
        real_write_manifest(directory, meta)
        marker = Path(directory) / checkpoint.MARKER
        marker.write_bytes(marker.read_bytes()[: marker.stat().st_size // 2])
        _die()

    def dying_prune(root, keep_last):
        _die()

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(trainer, "rl_step", rl_step))
        if kill in ("weights", "manifest", "prune"):
            def at_kill_step(fake, real):
                return lambda *a, **k: (fake if step["now"] == KILL_STEP else real)(*a, **k)
            target, name, fake, real = {
                "weights": (checkpointing, "save_hf_dir", torn_weights, real_save_hf_dir),
                "manifest": (checkpoint, "write_manifest", torn_manifest, real_write_manifest),
                "prune": (checkpointing, "prune_checkpoints", dying_prune, real_prune),
            }[kill]
            stack.enter_context(mock.patch.object(target, name, at_kill_step(fake, real)))
        trainer.train(policy=model, tokenizer=tokenizer, task=task, train_examples=task.generate(32, 1, seed=0),
                      val_examples=task.generate(4, 1, seed=1), config=config, output_dir=out, progress=False,
                      reward_fn=reward_fn)
    return model


if __name__ == "__main__":
    torch.set_num_threads(1)
    kill_at = sys.argv[2]
    run(Path(sys.argv[1]), kill=kill_at, nan_streak=kill_at == "streak")
    sys.exit("killed_train.py: the run finished instead of being killed")
