"""A short R-TAP run that can SIGKILL its own process in stage 2 (issue 19, fix 5).

``python killed_rtap.py OUT`` runs stage 1, then stage 2 (4 GRPO steps, a checkpoint every 2), and dies by
``SIGKILL`` right after the update of step 3: the step-2 checkpoint is the newest, and C_phi has been updated in
memory on steps 1-3. :func:`run` is imported by tests/rtap/test_rtap_resume.py to train the uninterrupted reference
and to resume in the test process, with the same data, seeds and config.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from unittest import mock

import torch

import rl_distill.engine.trainer as trainer
from rl_distill.models.factory import ModelConfig, build_model
from rl_distill.models.tokenizer import build_tokenizer
from rl_distill.rtap.config import RTAPConfig
from rl_distill.rtap.train import RTAPResult, train_rtap
from rl_distill.tasks.registry import get_task
from rl_distill.typed_config import from_dict

KILL_STEP = 3
TASK = get_task("arithmetic", ops=["+"])
CONFIG = {
    "cycles": {"max_cycles": 2},
    "confidence": {"samples_per_question": 2, "max_questions": 8, "epochs": 1, "batch_size": 8,
                   "eval_samples_per_question": 2, "eval_max_questions": 4, "update_steps": 2, "update_lr": 1e-2},
    "rewards": {"max_length": 48, "cache_length": 8},
    "train": {"total_steps": 4, "prompts_per_step": 2, "seed": 5, "rollout": {"group_size": 4, "max_new_tokens": 12},
              "loss": {"name": "grpo", "config": {"eps_low": 0.2, "eps_high": 0.2, "beta": 0.04, "compile": False}},
              "optimizer": {"lr": 1e-2}, "mu": 1, "mini_batch_size": 8,
              "validation": {"every": 0, "max_examples": 4, "batch_size": 4},
              "checkpoint": {"every": 2, "keep_last": 2}},
}


def build_policy() -> torch.nn.Module:
    """The policy every run starts from (seeded: the same weights in every process)."""
    return build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, seed=3),
                       build_tokenizer(TASK.alphabet))


def run(out: Path, kill: bool = False) -> tuple[torch.nn.Module, RTAPResult]:
    """R-TAP into ``out`` (resuming what is there); returns the policy and the result. ``kill`` never returns."""
    tokenizer = build_tokenizer(TASK.alphabet)
    policy = build_policy()
    config = from_dict(RTAPConfig, CONFIG, where="killed_rtap")
    real_rl_step = trainer.rl_step

    def rl_step(*args, **kwargs):
        result = real_rl_step(*args, **kwargs)
        if kill and args[-1] == KILL_STEP:  # the 1-based step number the trainer passes last
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    with mock.patch.object(trainer, "rl_step", rl_step):
        result = train_rtap(policy=policy, tokenizer=tokenizer, task=TASK, train_examples=TASK.generate(16, 1, seed=0),
                            val_examples=TASK.generate(4, 1, seed=1), config=config, output_dir=out, progress=False)
    return policy, result


if __name__ == "__main__":
    torch.set_num_threads(1)
    run(Path(sys.argv[1]), kill=True)
    sys.exit("killed_rtap.py: the run finished instead of being killed")
