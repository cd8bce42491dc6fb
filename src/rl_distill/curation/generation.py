"""Generate or load the raw examples of every task spec into one polars frame (optionally in worker processes).

Work is cut into chunks of ``chunk_size`` rows per (task spec, difficulty); each chunk's seed is derived from the
global seed, the spec label, the difficulty and the chunk index, so the result is the same for any number of workers.
Loaded files (non-procedural tasks) are one chunk per difficulty.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import polars as pl

from rl_distill.curation.config import DataCurationConfig
from rl_distill.tasks.base import Task
from rl_distill.tasks.registry import TASKS, get_task

RAW_COLUMNS = ("id", "task", "subset", "difficulty", "prompt", "trace", "trace_clean", "answer", "question_key",
               "params", "meta")


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One unit of generation work."""

    name: str
    params_json: str
    subset: str
    difficulty: int
    n: int
    seed: int
    self_correction_rate: float
    on_bad_row: str


def chunk_seed(seed: int, subset: str, difficulty: int, index: int) -> int:
    """A 48-bit seed for chunk ``index`` of ``(subset, difficulty)``, stable across runs and Python versions."""
    digest = hashlib.sha1(f"{seed}:{subset}:{difficulty}:{index}".encode()).hexdigest()
    return int(digest[:12], 16)


def plan_chunks(cfg: DataCurationConfig) -> list[Chunk]:
    chunks = []
    for spec in cfg.tasks:
        params_json = json.dumps(spec.params, sort_keys=True)
        procedural = TASKS.get(spec.name).procedural
        for difficulty in spec.difficulties:
            sizes = [spec.n_per_difficulty]
            if procedural:
                full, rest = divmod(spec.n_per_difficulty, cfg.chunk_size)
                sizes = [cfg.chunk_size] * full + ([rest] if rest else [])
            for index, size in enumerate(sizes):
                chunks.append(Chunk(spec.name, params_json, spec.label, difficulty, size,
                                    chunk_seed(cfg.seed, spec.label, difficulty, index),
                                    cfg.self_correction_rate, cfg.on_bad_row))
    return chunks


@functools.lru_cache(maxsize=32)
def _task(name: str, params_json: str) -> Task:
    return get_task(name, **json.loads(params_json))


def run_chunk(chunk: Chunk) -> tuple[dict[str, list[Any]], list[str]]:
    """Columns of one chunk's examples and the bad-row messages its loader skipped."""
    task = _task(chunk.name, chunk.params_json)
    examples = task.generate(chunk.n, chunk.difficulty, chunk.seed,
                             self_correction_rate=chunk.self_correction_rate, on_bad_row=chunk.on_bad_row)
    columns: dict[str, list[Any]] = {name: [] for name in RAW_COLUMNS}
    for ex in examples:
        columns["id"].append(ex.id)
        columns["task"].append(ex.task)
        columns["prompt"].append(ex.prompt)
        columns["trace"].append(ex.trace)
        columns["trace_clean"].append(ex.trace_clean if ex.trace_clean is not None else ex.trace)
        columns["answer"].append(ex.answer)
        columns["question_key"].append(task.question_key(ex.prompt))
        columns["meta"].append(ex.meta)
    count = len(examples)
    columns["subset"] = [chunk.subset] * count
    columns["difficulty"] = [chunk.difficulty] * count
    columns["params"] = [chunk.params_json] * count
    return columns, list(getattr(task, "skipped", []))


def _frame(columns: dict[str, list[Any]]) -> pl.DataFrame:
    schema = {name: (pl.Int64 if name == "difficulty" else pl.String) for name in RAW_COLUMNS}
    return pl.DataFrame(columns, schema=schema)


def generate_raw(cfg: DataCurationConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(raw examples with :data:`RAW_COLUMNS`, bad rows skipped with columns ``subset``, ``message``)."""
    chunks = plan_chunks(cfg)
    if cfg.workers > 1 and len(chunks) > 1:
        context = multiprocessing.get_context("spawn")  # no fork of a process that may hold MLflow/tokenizer threads
        with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=context) as pool:
            results = list(pool.map(run_chunk, chunks))
    else:
        results = [run_chunk(chunk) for chunk in chunks]
    raw = pl.concat([_frame(cols) for cols, _ in results]) if results else _frame({})
    skipped: dict[tuple[str, str], None] = {}
    for chunk, (_, messages) in zip(chunks, results):
        for message in messages:
            skipped[(chunk.subset, message)] = None  # one file read per difficulty: dedupe the messages
    bad = pl.DataFrame({"subset": [s for s, _ in skipped], "message": [m for _, m in skipped]},
                       schema={"subset": pl.String, "message": pl.String})
    return raw, bad
