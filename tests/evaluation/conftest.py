"""A small synthetic per-sample frame (3 models x 2 levels x 6 problems x (4 sampled + 1 greedy)) for table
and figure tests."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from rl_distill.evaluation.samples import SAMPLE_SCHEMA


@pytest.fixture
def synthetic_samples() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for model, skill in {"grpo": 0.5, "rlad": 0.7, "my_model": 0.3}.items():
        for level in (2, 3):
            for p in range(6):
                for decoding, n in (("sampled", 4), ("greedy", 1)):
                    for i in range(n):
                        correct = bool(rng.random() < skill - 0.1 * level)
                        fmt = bool(rng.random() > 0.1)
                        verdict = "correct" if correct else ("wrong" if fmt else "unparseable")
                        rows.append((model, f"kk/{level}/{p}", level, decoding, i, correct, verdict, fmt,
                                     int(rng.integers(20, 60 * level)), 1, int(rng.poisson(0.5)), correct or not fmt))
    return pl.DataFrame(rows, schema=SAMPLE_SCHEMA, orient="row")
