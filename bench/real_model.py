"""Benchmark: a real pretrained LLM on this CPU: seconds per GRPO step with and without LoRA, peak RSS, accuracy.

Models: SmolLM2-135M-Instruct (``make smollm2`` imports it into ``data/06_models/smollm2_135m_instruct``) as the
teacher, and the student of ``conf/smollm2``: the same model with every other decoder layer (15 of 30, 81.4M
parameters). Both read natural-language prompts through the chat template with the R1 format instruction.

- **Step time**: ``train()`` runs GRPO at 4 prompts x 4 samples x 64 new tokens (``min_new_tokens: 64``, so every
  step samples exactly 64 tokens per row whatever the model writes), full fine-tuning and LoRA (r = 8 on
  q/k/v/o), for ``--steps`` steps after one warm-up step; each configuration runs in its own process, so its peak
  RSS (``ru_maxrss``) is its own.
- **Accuracy**: greedy on 100 natural-language 2-digit additions and 100 natural-language K&K puzzles with 2
  people (a seed no split uses; 128 and 256 new tokens), for the model as shipped, for ``--teacher-dir`` (e.g.
  the format-tuned teacher that ``kedro run --env smollm2`` writes to ``data/06_models/selected_teacher``) and
  ``--student-dir`` (``data/06_models/student_init``), when given.

Usage: ``.venv/bin/python bench/real_model.py [--steps 2] [--threads 2] [--teacher-dir DIR] [--student-dir DIR]
[--skip-steps] [--skip-accuracy]``. Prints one table per part.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = ROOT / "data/06_models/smollm2_135m_instruct"
STUDENT_LAYERS = tuple(range(0, 30, 2))
LORA = {"r": 8, "alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
TASKS = {"arithmetic": ({"ops": ["+"], "render": "natural"}, 2, 128),
         "knights_knaves": ({"render": "natural"}, 2, 256)}


def _tokenizer():
    from rl_distill.models.prompt_format import PromptFormat, apply_prompt_format
    from rl_distill.models.tokenizer import load_tokenizer

    return apply_prompt_format(load_tokenizer(str(SMOLLM2)), PromptFormat(chat_template="on"))


def _model(which: str, tokenizer):
    from rl_distill.models.factory import ModelConfig, build_model

    keep = STUDENT_LAYERS if which == "student" else None
    return build_model(ModelConfig(source="pretrained", path=str(SMOLLM2), keep_layers=keep), tokenizer)


def one_step_config(which: str, lora: bool, steps: int) -> dict:
    """Child process: time ``steps`` + 1 GRPO steps of ``which`` and report the mean of all but the first."""
    import torch

    from rl_distill.engine.config import TrainConfig
    from rl_distill.engine.trainer import train
    from rl_distill.tasks import get_task
    from rl_distill.typed_config import from_dict

    tokenizer = _tokenizer()
    model = _model(which, tokenizer)
    params, difficulty, _ = TASKS["arithmetic"]
    task = get_task("arithmetic", **params)
    examples = task.generate(64, difficulty, seed=0)
    cfg = from_dict(TrainConfig, {
        "total_steps": steps + 1, "prompts_per_step": 4, "seed": 0,
        "rollout": {"group_size": 4, "max_new_tokens": 64, "min_new_tokens": 64, "temperature": 1.0},
        "loss": {"name": "grpo", "config": {"compile": False}}, "optimizer": {"lr": 1e-6},
        "mini_batch_size": 16, "logprob_chunk_size": 64, "validation": {"every": 0, "max_examples": 1},
        "checkpoint": {"every": 1000, "keep_last": 1}, "log_every": 1,
        **({"lora": LORA} if lora else {}),
    }, where="bench")
    if lora:  # LoRA adds r * (in + out) weights per adapted linear layer
        trainable = sum(LORA["r"] * (m.in_features + m.out_features) for name, m in model.named_modules()
                        if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in LORA["target_modules"])
    else:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    with tempfile.TemporaryDirectory() as out:
        result = train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples,
                       val_examples=examples[:1], config=cfg, output_dir=Path(out), progress=False)
    values = [v for _, v in result.history["time/step_s"]]
    rest = values[1:] or values  # the first step warms the allocator up
    return {"model": which, "lora": lora, "step_s": sum(rest) / len(rest), "steps": len(rest),
            "params": sum(p.numel() for p in model.parameters()), "trainable": trainable,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def accuracy(model_dir: Path | None, which: str, tokenizer) -> dict[str, float]:
    from transformers import AutoModelForCausalLM

    from rl_distill.evaluation.samples import EvalConfig, evaluate_model
    from rl_distill.tasks import get_task

    model = _model(which, tokenizer) if model_dir is None else AutoModelForCausalLM.from_pretrained(model_dir)
    scores = {}
    for name, (params, difficulty, new_tokens) in TASKS.items():
        task = get_task(name, **params)
        problems = task.generate(100, difficulty, seed=12345)  # a seed no split of the env uses
        cfg = EvalConfig(num_samples=0, greedy=True, max_new_tokens=new_tokens, prompts_per_batch=50,
                         progress=False)
        t0 = time.perf_counter()
        samples = evaluate_model(which, model, tokenizer, task, problems, cfg)
        scores[name] = float(samples["correct"].mean())
        scores[f"{name}_format"] = float(samples["format_ok"].mean())
        scores[f"{name}_s"] = time.perf_counter() - t0
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--teacher-dir", type=Path, default=None)
    parser.add_argument("--student-dir", type=Path, default=None)
    parser.add_argument("--skip-steps", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "LORA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(one_step_config(args.one[0], args.one[1] == "lora", args.steps)))
        return
    if not (SMOLLM2 / "config.json").exists():
        sys.exit(f"{SMOLLM2} is missing: run `make smollm2` first")
    print(f"torch threads: {args.threads}; GRPO step = 4 prompts x 4 samples x 64 new tokens")
    if not args.skip_steps:
        print(f"| model | params | LoRA | trainable | s/step (mean of {args.steps}) | peak RSS (GB) |")
        print("|---|---:|---|---:|---:|---:|")
        for which in ("teacher", "student"):
            for lora in (False, True):
                cmd = [sys.executable, __file__, "--one", which, "lora" if lora else "full", "--steps",
                       str(args.steps), "--threads", str(args.threads)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()
                row = json.loads(out[-1])
                print(f"| {which} | {row['params'] / 1e6:.1f}M | {'r=8 qkvo' if lora else 'no'} | "
                      f"{row['trainable'] / 1e6:.2f}M | {row['step_s']:.1f} | {row['peak_rss_gb']:.2f} |",
                      flush=True)
    if not args.skip_accuracy:
        tokenizer = _tokenizer()
        rows = [("SmolLM2-135M-Instruct as shipped", None, "teacher")]
        rows += [(f"teacher {args.teacher_dir}", args.teacher_dir, "teacher")] if args.teacher_dir else []
        rows += [(f"student {args.student_dir}", args.student_dir, "student")] if args.student_dir else []
        print("| model | arithmetic acc (format ok) | K&K n=2 acc (format ok) | seconds |")
        print("|---|---:|---:|---:|")
        for label, model_dir, which in rows:
            s = accuracy(model_dir, which, tokenizer)
            print(f"| {label} | {s['arithmetic']:.2f} ({s['arithmetic_format']:.2f}) | {s['knights_knaves']:.2f} "
                  f"({s['knights_knaves_format']:.2f}) | {s['arithmetic_s'] + s['knights_knaves_s']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
