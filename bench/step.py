"""Benchmark: seconds per training step and tokens/s for grpo, kl_kd and rlad, and RLAD's overhead over GRPO.

All three methods run through the same ``train()`` with the same student (warm-started once by a short SFT so that
responses end with eos at realistic lengths), the same teacher, the same prompts and rollout settings, in one
process; rounds are interleaved (grpo, kl_kd, rlad, grpo, ...) so that a change in machine load hits all methods.
Per step the engine's own timers split the time into rollout (generation + old-policy scoring), teacher scoring
(teacher forward, no grad; 0 for grpo), update (mu epochs of micro-batches) and the rest (reward, bookkeeping).
The first ``--skip`` steps of every run are dropped (allocator warm-up, compilation). The learning rate defaults to a
negligible 1e-8 so that the three methods sample the same rollouts (same seed, the teacher consumes no randomness):
this is a cost comparison, and response lengths would otherwise drift apart as the methods learn differently. The
overhead is reported as the step-time ratio and as teacher time / grpo step time (the structural cost: one teacher
forward per step). Goal: overhead <= 10% (the RLAD paper's table: +15.5%).

kl_kd and rlad run with the trainer's defaults: ``concurrent_scoring: auto`` (on a CPU with a core to spare, the
teacher scores each response in a second thread as soon as it is sampled) and ``teacher_dtype: float32``. Two more
rlad runs in the same process show what each option buys: ``rlad_seq`` (``concurrent_scoring: off``) and
``rlad_bf16`` (``teacher_dtype: bfloat16``; slower than fp32 on hardware without native bf16). Printed alongside:
the cores the process may use and what each ``auto`` resolves to here. Run it with ``--threads 1`` and
``--threads 2``: with two threads on two cores no core is spare, ``auto`` turns the overlap off, and GRPO itself
is faster.

Every run makes one optimizer update per step (``--mini-batch`` defaults to B*G), so ``old_logprobs: auto`` skips
the old-policy pass for all methods, and the teacher forward is a larger share of a cheaper step; in the concurrent
runs it then overlaps the rollout only (``--mini-batch 64`` brings the pass back, and with it the overlap beside it).

Usage: ``.venv/bin/python bench/step.py [--steps 12] [--rounds 2] [--threads 1]``; ``--help`` for the sizes.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rl_distill.engine.config import TrainConfig
from rl_distill.engine.rl_step import concurrent_scoring_enabled
from rl_distill.engine.trainer import train
from rl_distill.models.factory import ModelConfig, build_model, count_parameters, resolve_dtype
from rl_distill.models.tokenizer import alphabet_for, build_tokenizer
from rl_distill.tasks import get_task
from rl_distill.typed_config import from_dict

#: (label, loss name, TrainConfig overrides)
RUNS = (("grpo", "grpo", {}), ("kl_kd", "kl_kd", {}), ("rlad", "rlad", {}),
        ("rlad_seq", "rlad", {"concurrent_scoring": "off"}), ("rlad_bf16", "rlad", {"teacher_dtype": "bfloat16"}))
PHASES = ("time/step_s", "time/rollout_s", "time/teacher_s", "time/frozen_busy_s", "time/update_s",
          "time/tokens_per_s", "rollout/response_len_mean", "rollout/old_logprobs_skipped")


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12, help="training steps per run (per method and round)")
    p.add_argument("--skip", type=int, default=2, help="first steps of each run left out of the averages")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds over the five runs")
    p.add_argument("--prompts", type=int, default=16, help="B, prompts per step")
    p.add_argument("--group", type=int, default=8, help="G, samples per prompt")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--task", default="knights_knaves", help="registered task name")
    p.add_argument("--difficulty", type=int, default=3, help="task difficulty (K&K: people; arithmetic: digits)")
    p.add_argument("--student", default="64x2x192", help="hidden x layers x ffn (conf/base student_init)")
    p.add_argument("--teacher", default="128x4x384", help="hidden x layers x ffn (conf/base teacher)")
    p.add_argument("--sft-steps", type=int, default=150, help="warm start of the student (answer format)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest at these sizes)")
    p.add_argument("--compile", action="store_true", help="torch.compile the ratio kernel (default: eager)")
    p.add_argument("--lr", type=float, default=1e-8, help="RL learning rate (tiny: identical rollouts per method)")
    p.add_argument("--old-logprobs", default="auto", choices=("auto", "forward"),
                   help="TrainConfig.old_logprobs (forward: run the old-policy pass even where it is redundant)")
    p.add_argument("--mini-batch", type=int, default=None,
                   help="rows per micro-batch (default B*G: one update per step, so old_logprobs: auto skips the "
                        "old-policy pass; 64 gives two updates and the pass runs)")
    return p.parse_args()


def _model_cfg(spec: str, seed: int) -> ModelConfig:
    hidden, layers, ffn = (int(x) for x in spec.split("x"))
    return ModelConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                       intermediate_size=ffn, max_position_embeddings=512, seed=seed)


def _rl_config(method: str, overrides: dict[str, str], args: argparse.Namespace) -> TrainConfig:
    return from_dict(TrainConfig, {**overrides,
        "total_steps": args.steps, "prompts_per_step": args.prompts, "seed": 1,
        "rollout": {"group_size": args.group, "max_new_tokens": args.max_new_tokens},
        "loss": {"name": method, "config": {"compile": args.compile}},
        "mini_batch_size": args.mini_batch or args.prompts * args.group, "old_logprobs": args.old_logprobs,
        "optimizer": {"lr": args.lr}, "schedule": {"decay": "constant"},
        "validation": {"every": 0}, "checkpoint": {"every": 10_000, "resume": False},
    }, where=f"bench:{method}")


def _mean_after(history: dict[str, list[tuple[int, float]]], key: str, skip: int) -> list[float]:
    return [v for step, v in history.get(key, []) if step > skip]


def main() -> None:
    args = _args()
    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    tokenizer = build_tokenizer(alphabet_for([task]))
    train_examples = task.generate(512, args.difficulty, seed=0)
    student = build_model(_model_cfg(args.student, 0), tokenizer)
    teacher = build_model(_model_cfg(args.teacher, 1), tokenizer)
    print(f"student {args.student}: {count_parameters(student):,} params; teacher {args.teacher}: "
          f"{count_parameters(teacher):,} params; B={args.prompts} G={args.group} "
          f"max_new_tokens={args.max_new_tokens}; {args.task} d={args.difficulty}; threads={args.threads}")

    with tempfile.TemporaryDirectory(prefix="bench_step_") as tmp:
        t0 = time.perf_counter()
        sft = from_dict(TrainConfig, {"total_steps": args.sft_steps, "loss": {"name": "sft"},
                                      "sft": {"batch_size": 32}, "optimizer": {"lr": 3e-3},
                                      "rollout": {"temperature": 0.0}, "validation": {"every": 0},
                                      "checkpoint": {"every": 10_000}}, where="bench:sft")
        train(policy=student, tokenizer=tokenizer, task=task, train_examples=train_examples, val_examples=[],
              config=sft, output_dir=Path(tmp) / "sft", progress=False)
        print(f"warm start: {args.sft_steps} SFT steps in {time.perf_counter() - t0:.1f} s")

        samples: dict[str, dict[str, list[float]]] = {label: {k: [] for k in PHASES} for label, _, _ in RUNS}
        for r in range(args.rounds):
            for label, method, overrides in RUNS:
                result = train(policy=copy.deepcopy(student), tokenizer=tokenizer, task=task,
                               train_examples=train_examples, val_examples=[],
                               config=_rl_config(method, overrides, args),
                               teacher=teacher if method != "grpo" else None,
                               output_dir=Path(tmp) / f"{label}_{r}", progress=False)
                for key in PHASES:
                    samples[label][key] += _mean_after(result.history, key, args.skip)

    mean = {m: {k: statistics.fmean(v) if v else 0.0 for k, v in samples[m].items()} for m in samples}
    print(f"\n{'run':9} {'s/step':>8} {'rollout':>8} {'teacher':>8} {'update':>8} {'other':>8} {'tokens/s':>9}"
          f" {'resp len':>8} {'teacher busy':>12}")
    for m, s in mean.items():
        other = s["time/step_s"] - s["time/rollout_s"] - s["time/teacher_s"] - s["time/update_s"]
        print(f"{m:9} {s['time/step_s']:8.3f} {s['time/rollout_s']:8.3f} {s['time/teacher_s']:8.3f} "
              f"{s['time/update_s']:8.3f} {other:8.3f} {s['time/tokens_per_s']:9.0f} "
              f"{s['rollout/response_len_mean']:8.1f} {s['time/frozen_busy_s']:12.3f}")
    print("(teacher: time the step waited for the teacher forward; teacher busy: that forward's own duration)")
    skipped = statistics.fmean(mean[m]["rollout/old_logprobs_skipped"] for m in mean)
    print(f"old-policy pass skipped (old_logprobs: auto, one update per step): {skipped:.0%} of steps")
    grpo = mean["grpo"]["time/step_s"]

    def overhead(label: str) -> str:
        return f"{100 * (mean[label]['time/step_s'] / grpo - 1):+.1f}%"

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\ncores available: {cores}; torch threads: {args.threads}; concurrent_scoring auto -> "
          f"{'on' if concurrent_scoring_enabled('auto', torch.device('cpu')) else 'off'}; teacher_dtype auto -> "
          f"{resolve_dtype('auto', torch.device('cpu'))}")
    print(f"kl_kd overhead over grpo (step time): {overhead('kl_kd')}")
    print(f"rlad teacher forward / grpo step time: {100 * mean['rlad']['time/frozen_busy_s'] / grpo:.1f}%")
    print(f"rlad_seq overhead over grpo (step time, teacher forward not overlapped): {overhead('rlad_seq')}")
    print(f"rlad_bf16 overhead over grpo (step time, bfloat16 teacher): {overhead('rlad_bf16')}")
    print(f"rlad overhead over grpo (step time): {overhead('rlad')}  (goal <= 10%; paper +15.5%)")


if __name__ == "__main__":
    main()
