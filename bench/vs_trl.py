"""Benchmark: the project's GRPO step against TRL's ``GRPOTrainer`` on the same model and workload, side by side.

Workload (issue "Faster than TRL"): a tiny Qwen2 (hidden 128, 4 layers, 4 heads, 4 kv heads, intermediate 512,
untied, fp32, sdpa, 1.06M parameters) over the project's arithmetic char tokenizer (29 tokens); 8 prompts ``ab+cd=``
x 8 generations = 64 completions of exactly 32 new tokens per step (``min_new_tokens = max_new_tokens = 32`` on both
sides), one optimizer update per step: mu = 1 (TRL ``num_iterations=1``), no KL (``beta=0``), token-mean aggregation
(TRL ``loss_type="dapo"``), clip 0.2 both sides, AdamW lr 1e-4 constant, no weight decay, grad-norm clip 1.0,
temperature 1, top-p 1, no top-k, no repetition penalty. Both sides start from copies of one model, use the same
reward function (the share of ``1`` characters in the completion: cheap, and it differs across a group so advantages
are non-zero) and run in this one process, interleaved (TRL, ours, TRL, ours, ...) so that machine load hits both.

Per side and step: s/step (TRL: a ``TrainerCallback``'s step begin/end; ours: the trainer's ``time/step_s``) and the
generation / rest split (TRL: the time inside its model's ``generate``, everything else is "update"; ours:
``time/rollout_s``, which also holds the old-policy pass when one runs, and the remainder). The first ``--skip``
steps of every run are dropped. Tokens per step are identical on both sides (same prompts' lengths, 32 new tokens),
so the tokens/s ratio is TRL's s/step over ours, printed as the mean over rounds with the per-round range.

The project runs in several variants in the same rounds (``OURS``): its defaults (``old_logprobs: auto`` skips the
old-policy pass here, as TRL does), the old-policy pass forced back on (what the shortcut buys), the compiled
static-cache decode (``rollout.engine_options: {cache: static, compile: true}``), that plus fused AdamW, and that
plus the compiled update (``compile_update: true``). Compiled variants keep one model object across rounds, so each
graph is compiled once, inside the first (dropped) steps of its first run.

Differences that cannot be removed (both sides run their defaults otherwise):

- TRL turns on gradient checkpointing and bf16 by default; both are switched off here (ours runs neither), so the
  comparison is fp32 against fp32 without recomputation.
- TRL computes per-token entropies and more logging metrics each step, and tokenises the prompts each step
  (its dataloader); ours computes its own metrics (clip fractions, approx KL, ...). Each side's bookkeeping is
  part of its step.
- Prompt order: TRL shuffles its dataset with its sampler, ours samples by its bucketed sampler; every prompt has
  the same length, so the work per step is the same.
- The reward is the same Python function; advantages are computed each side's own way (both group-normalised).
- TRL's generation config hard-codes ``disable_compile=True``, so its ``generate`` cannot take the compiled decode;
  its ``cache_implementation="static"`` alone measured level with the dynamic cache here (as for ours).

Requires the optional ``bench`` extra (``pip install -e ".[bench]"``: TRL, never a runtime dependency).
Usage: ``.venv/bin/python bench/vs_trl.py [--rounds 3] [--steps 12] [--threads 2 1]``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from rl_distill.engine.config import TrainConfig
from rl_distill.engine.trainer import train
from rl_distill.models.factory import ModelConfig, build_model, count_parameters
from rl_distill.models.tokenizer import alphabet_for, build_tokenizer
from rl_distill.tasks import get_task
from rl_distill.tasks.base import Example
from rl_distill.typed_config import from_dict

NEW_TOKENS = 32


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (TRL, ours) per thread count")
    p.add_argument("--steps", type=int, default=12, help="training steps per run")
    p.add_argument("--skip", type=int, default=2, help="first steps of each run left out of the averages")
    p.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="torch intra-op thread counts to measure")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step")
    p.add_argument("--group", type=int, default=8, help="completions per prompt")
    return p.parse_args()


def reward(completions: list[str]) -> list[float]:
    """The same reward on both sides: the share of ``1`` characters (cheap; varies within a group)."""
    return [c.count("1") / max(1, len(c)) for c in completions]


def _prompts(n: int) -> list[str]:
    rng = random.Random(0)
    return [f"{rng.randint(10, 99)}+{rng.randint(10, 99)}=" for _ in range(n)]


def _model(tokenizer: Any) -> torch.nn.Module:
    cfg = ModelConfig(family="qwen2", hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=4, intermediate_size=512, tie_word_embeddings=False,
                      max_position_embeddings=128, attn_implementation="sdpa", seed=0)
    return build_model(cfg, tokenizer)


def run_trl(model: torch.nn.Module, tokenizer: Any, prompts: list[str], args: argparse.Namespace,
            out: Path) -> list[tuple[float, float]]:
    """``[(step_s, generate_s)]`` per step of TRL's GRPOTrainer on ``model``."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    gen_time = [0.0]
    inner_generate = model.generate

    def timed_generate(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner_generate(*a, **k)
        finally:
            gen_time[0] += time.perf_counter() - t0

    model.generate = timed_generate
    steps: list[tuple[float, float]] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a: Any, **k: Any) -> None:
            self.t0, gen_time[0] = time.perf_counter(), 0.0

        def on_step_end(self, *a: Any, **k: Any) -> None:
            steps.append((time.perf_counter() - self.t0, gen_time[0]))

    config = GRPOConfig(
        output_dir=str(out), per_device_train_batch_size=args.prompts * args.group, num_generations=args.group,
        max_completion_length=NEW_TOKENS, generation_kwargs={"min_new_tokens": NEW_TOKENS},
        num_iterations=1, beta=0.0, loss_type="dapo", epsilon=0.2, learning_rate=1e-4, lr_scheduler_type="constant",
        weight_decay=0.0, max_grad_norm=1.0, max_steps=args.steps, temperature=1.0, top_p=1.0, top_k=0,
        repetition_penalty=1.0, gradient_checkpointing=False, bf16=False, use_cpu=True, seed=0,
        report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True, dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=lambda completions, **_: reward(completions), args=config,
                          train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tokenizer,
                          callbacks=[StepTimer()])
    trainer.remove_callback(PrinterCallback)  # its per-step log dicts would flood the table
    trainer.train()
    return steps


#: The project's variants, measured in the same interleaved rounds: label -> TrainConfig overrides.
OURS = {
    "ours": {},
    "ours, old-lp forward": {"old_logprobs": "forward"},  # what the skipped old-policy pass cost
    "ours, compiled decode": {"rollout": {"engine_options": {"cache": "static", "compile": True}}},
    "ours, compiled + fused": {"rollout": {"engine_options": {"cache": "static", "compile": True}},
                               "optimizer": {"fused": True}},
    "ours, all compiled": {"rollout": {"engine_options": {"cache": "static", "compile": True}},
                           "compile_update": True},
}


def run_ours(model: torch.nn.Module, tokenizer: Any, prompts: list[str], args: argparse.Namespace, out: Path,
             overrides: dict[str, Any]) -> list[tuple[float, float]]:
    """``[(step_s, rollout_s)]`` per step of the project's ``train()`` on ``model``."""
    task = get_task("arithmetic", ops=["+"])
    examples = [Example(id=str(i), task=task.name, difficulty=2, prompt=p, trace="", answer="")
                for i, p in enumerate(prompts)]
    rollout = {"group_size": args.group, "max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS,
               "temperature": 1.0, "top_p": 1.0, **overrides.get("rollout", {})}
    config = from_dict(TrainConfig, {
        "total_steps": args.steps, "prompts_per_step": args.prompts, "seed": 0, "rollout": rollout,
        "loss": {"name": "grpo", "config": {"eps_low": 0.2, "eps_high": 0.2, "beta": 0.0, "agg": "token-mean"}},
        "mu": 1, "mini_batch_size": args.prompts * args.group, "max_grad_norm": 1.0,
        "optimizer": {"lr": 1e-4, "weight_decay": 0.0, **overrides.get("optimizer", {})},
        "schedule": {"decay": "constant"}, "validation": {"every": 0}, "checkpoint": {"every": 10_000, "resume": False},
        **{k: v for k, v in overrides.items() if k not in ("rollout", "optimizer")},
    }, where="bench:vs_trl")
    result = train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples, val_examples=[],
                   config=config, output_dir=out, progress=False,
                   reward_fn=lambda texts, rows: (torch.tensor(reward(texts)), {}))
    step = dict(result.history["time/step_s"])
    rollout_s = dict(result.history["time/rollout_s"])
    return [(step[s], rollout_s[s]) for s in sorted(step)]


def _summary(runs: list[list[tuple[float, float]]], skip: int) -> tuple[list[float], float, float]:
    """Per-round mean s/step, and the mean generation and rest over all kept steps."""
    kept = [r[skip:] for r in runs]
    per_round = [statistics.fmean(s for s, _ in r) for r in kept]
    flat = [x for r in kept for x in r]
    gen = statistics.fmean(g for _, g in flat)
    return per_round, gen, statistics.fmean(s for s, _ in flat) - gen


def main() -> None:
    args = _args()
    try:
        import trl  # noqa: F401
    except ImportError:
        raise SystemExit("bench/vs_trl.py needs TRL (the optional bench extra): "
                         ".venv/bin/pip install -c constraints.txt -e '.[bench]'") from None
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tokenizer = build_tokenizer(alphabet_for([get_task("arithmetic", ops=["+"])]))
    base = _model(tokenizer)
    prompts = _prompts(args.prompts * (args.steps + 2))
    tokens = len(tokenizer(prompts[0])["input_ids"]) + NEW_TOKENS
    print(f"model: Qwen2 {count_parameters(base):,} params, vocab {len(tokenizer)}; {args.prompts} prompts x "
          f"{args.group} = {args.prompts * args.group} completions of {NEW_TOKENS} tokens ({tokens} tokens/row); "
          f"{args.steps} steps, first {args.skip} dropped; {args.rounds} rounds; cores "
          f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}")
    # One model object per project variant, reloaded with the start weights before each run: the compiled decode
    # graph belongs to the model object, so it is compiled once (in the first, skipped steps) and then reused.
    ours_models = {label: copy.deepcopy(base) for label in OURS}
    runs: dict[tuple[int, str], list[list[tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_vs_trl_") as tmp:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for r in range(args.rounds):
                torch.manual_seed(r)
                out = Path(tmp) / f"{threads}_{r}"
                runs.setdefault((threads, "TRL"), []).append(
                    run_trl(copy.deepcopy(base), tokenizer, prompts, args, out / "trl"))
                line = [f"TRL {statistics.fmean(s for s, _ in runs[(threads, 'TRL')][-1][args.skip:]):.3f}"]
                for i, (label, overrides) in enumerate(OURS.items()):
                    model = ours_models[label]
                    model.load_state_dict(base.state_dict())
                    torch.manual_seed(r)
                    runs.setdefault((threads, label), []).append(
                        run_ours(model, tokenizer, prompts, args, out / f"ours{i}", overrides))
                    line.append(f"{label} {statistics.fmean(s for s, _ in runs[(threads, label)][-1][args.skip:]):.3f}")
                print(f"threads {threads} round {r} s/step: " + "; ".join(line), flush=True)

    tokens_per_step = tokens * args.prompts * args.group
    sides = ["TRL", *OURS]
    print(f"\n{'threads':>7} {'side':24} {'s/step':>7} {'generate':>9} {'update+rest':>12} {'tokens/s':>9} "
          f"{'vs TRL':>7} {'range':>11}")
    for threads in args.threads:
        trl_rounds = _summary(runs[(threads, "TRL")], args.skip)[0]
        for side in sides:
            per_round, gen, rest = _summary(runs[(threads, side)], args.skip)
            ratios = [t / o for t, o in zip(trl_rounds, per_round)]
            step = statistics.fmean(per_round)
            print(f"{threads:>7} {side:24} {step:7.3f} {gen:9.3f} {rest:12.3f} {tokens_per_step / step:9.0f} "
                  f"{statistics.fmean(ratios):6.2f}x {min(ratios):5.2f}-{max(ratios):.2f}")
    print("(vs TRL: ours / TRL tokens/s = TRL s/step / ours s/step, mean over rounds, with the per-round range; "
          "goal >= 1.5x. Ours: generate = time/rollout_s, which includes the old-policy pass when one runs)")


if __name__ == "__main__":
    main()
