"""Benchmark: time to generate and curate 100k Knights-and-Knaves puzzles (n = 2..6), goal <= 60 s on 2 cores.

Runs the Kedro-free functions of the ``data_curation`` pipeline (generation, curation, split, statistics) on one
config, once with ``workers=1`` and once with ``workers=2``, and prints the seconds per stage, puzzles per second and
the ratio between the two. Usage: ``python bench/curation.py [--rows 100000] [--workers 1 2]``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


def run(rows: int, workers: int, max_tokens: int) -> dict[str, float]:
    from rl_distill.curation.config import DataCurationConfig, SplitConfig, TaskSpec
    from rl_distill.curation.curation import curate, split, statistics
    from rl_distill.curation.generation import generate_raw
    from rl_distill.models.tokenizer import alphabet_for, build_tokenizer
    from rl_distill.tasks.registry import get_task

    difficulties = (2, 3, 4, 5, 6)
    cfg = DataCurationConfig(
        tasks=(TaskSpec(name="knights_knaves", difficulties=difficulties,
                        n_per_difficulty=rows // len(difficulties)),),
        max_tokens=max_tokens, split=SplitConfig(), seed=0, self_correction_rate=0.05, workers=workers,
        chunk_size=5000, log_to_mlflow=False)
    tasks = {"knights_knaves": get_task("knights_knaves")}
    times: dict[str, float] = {}
    start = time.perf_counter()
    raw, bad = generate_raw(cfg)
    times["generate"] = time.perf_counter() - start
    mark = time.perf_counter()
    tokenizer = build_tokenizer(alphabet_for(tasks.values()))
    curated, drops = curate(raw, tokenizer, tasks, cfg.max_tokens)
    times["curate"] = time.perf_counter() - mark
    mark = time.perf_counter()
    parts = split(curated, cfg.split, cfg.seed)
    statistics(drops, bad, parts, cfg.split)
    times["split+stats"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    times["rows"] = float(raw.height)
    times["kept"] = float(curated.height)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max-tokens", type=int, default=1024)
    args = parser.parse_args()
    print(f"K&K n=2..6, {args.rows} puzzles, max_tokens={args.max_tokens}, cpus={os.cpu_count()}")
    results = {}
    for workers in args.workers:
        t = run(args.rows, workers, args.max_tokens)
        results[workers] = t
        print(f"workers={workers}: generate {t['generate']:.1f}s  curate {t['curate']:.1f}s  "
              f"split+stats {t['split+stats']:.1f}s  total {t['total']:.1f}s  "
              f"({t['rows'] / t['total']:.0f} puzzles/s, {int(t['kept'])} kept)  "
              f"goal <= 60 s: {'met' if t['total'] <= 60 else 'MISSED'}")
    if len(results) > 1:
        first, *rest = args.workers
        for workers in rest:
            print(f"speed-up workers={workers} vs {first}: {results[first]['total'] / results[workers]['total']:.2f}x")


if __name__ == "__main__":
    main()
