"""Score trained model directories on the validation split: the numbers behind hyperparameter choices (never test).

    python scripts/eval_val.py data/06_models/student_init data/06_models/grpo --per-level 100

Each model answers ``--per-level`` validation problems of every (subset, difficulty) level with the evaluation
pipeline's decoding (the ``evaluation.decoding`` block of conf/base + conf/local: k samples at temperature 0.6 /
top-p 0.95 plus one greedy reply), and prints one JSON line: mean@k, greedy accuracy, mean@k per level, and the
benchmark's behaviour metrics (``SEED_METRICS``: response tokens, trace consistency, Oops markers and think-answer
cycles per reply).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import polars as pl
import torch
from kedro.config import OmegaConfigLoader

from rl_distill.evaluation.samples import GREEDY, SAMPLED, evaluate_model
from rl_distill.evaluation.seeds import SEED_METRICS
from rl_distill.models.factory import load_model_dir
from rl_distill.pipelines.evaluation.config import load_params
from rl_distill.pipelines.training import frame_to_examples, single_task
from rl_distill.settings import CONFIG_LOADER_ARGS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="HF model directories")
    parser.add_argument("--val", default="data/05_model_input/val_examples.parquet")
    parser.add_argument("--per-level", type=int, default=None, help="problems per (subset, difficulty); default all")
    parser.add_argument("--conf", type=Path, default=Path("conf"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    val = pl.read_parquet(args.val)
    levels = val.group_by("subset", "difficulty", maintain_order=True)
    if args.per_level is not None:
        val = pl.concat([group.head(args.per_level) for _, group in levels])
    level_of = dict(zip(val["id"], val["subset"] + "/" + val["difficulty"].cast(str)))
    task, examples = single_task(val), frame_to_examples(val)
    params = OmegaConfigLoader(conf_source=str(args.conf), **CONFIG_LOADER_ARGS)["parameters"]
    decoding = dataclasses.replace(load_params(params.get("evaluation")).decoding, greedy=True, progress=False)
    for path in args.models:
        model, tokenizer = load_model_dir(path)
        rows = evaluate_model(path, model, tokenizer, task, examples, decoding).with_columns(
            pl.col("example_id").replace_strict(level_of).alias("level"))
        sampled, greedy = rows.filter(pl.col("decoding") == SAMPLED), rows.filter(pl.col("decoding") == GREEDY)
        per_level = sampled.group_by("level").agg(pl.col("correct").mean()).sort("level")
        behaviour = sampled.select(expr.mean().alias(name) for name, expr in SEED_METRICS.items()
                                   if name != "accuracy").row(0, named=True)  # the benchmark's definitions
        print(json.dumps({
            "model": path, f"mean@{decoding.num_samples}": round(sampled["correct"].mean(), 4),
            "greedy": round(greedy["correct"].mean(), 4),
            **{row["level"]: round(row["correct"], 3) for row in per_level.iter_rows(named=True)},
            **{name: round(value, 3) for name, value in behaviour.items()}}), flush=True)


if __name__ == "__main__":
    main()
