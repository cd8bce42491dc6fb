"""Run by tests/engine/test_launch.py under ``accelerate launch`` with 2 CPU processes (gloo): a few GRPO steps.

Writes ``rank<i>.json`` (a checksum of the final weights on each process) and, from the main process,
``result.json`` (final step, resumed-from step, logged steps) into the output directory given as argv[1].
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from rl_distill.engine.config import TrainConfig
from rl_distill.engine.trainer import train
from rl_distill.models.factory import ModelConfig, build_model
from rl_distill.models.tokenizer import alphabet_for, build_tokenizer
from rl_distill.tasks import get_task
from rl_distill.typed_config import from_dict


def main() -> None:
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    task = get_task("arithmetic", ops=["+"])
    tokenizer = build_tokenizer(alphabet_for([task]))
    model = build_model(ModelConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=64, seed=0), tokenizer)
    config = from_dict(TrainConfig, {
        "total_steps": 4, "prompts_per_step": 4, "seed": 3,
        "rollout": {"group_size": 2, "max_new_tokens": 8},
        "loss": {"name": "grpo", "config": {"compile": False}},
        "optimizer": {"lr": 1e-2}, "mini_batch_size": 2, "grad_accum_steps": 2,
        "validation": {"every": 2, "max_examples": 6, "batch_size": 4},
        "checkpoint": {"every": 2},
    }, where="two_process_train")
    logged: list[int] = []
    result = train(policy=model, tokenizer=tokenizer, task=task, train_examples=task.generate(16, 1, seed=0),
                   val_examples=task.generate(6, 1, seed=1), config=config, output_dir=out / "run",
                   log_fn=lambda metrics, step: logged.append(step), progress=False)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    (out / f"rank{rank}.json").write_text(json.dumps({"checksum": checksum, "world": world}))
    if rank == 0:
        (out / "result.json").write_text(json.dumps({
            "final_step": result.final_step, "resumed_from": result.resumed_from, "logged": logged,
            "val_accuracy": result.val_accuracy, "final_dir": str(result.final_model_dir)}))


if __name__ == "__main__":
    main()
