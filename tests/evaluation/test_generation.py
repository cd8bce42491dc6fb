"""Generation through the rollout engine with a tiny random model (evaluation/samples.py, generation half)."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from rl_distill.evaluation.samples import SAMPLE_SCHEMA, EvalConfig, _batches, evaluate_model
from rl_distill.models.factory import ModelConfig, build_model
from rl_distill.models.tokenizer import build_tokenizer
from rl_distill.tasks import get_task


@pytest.fixture(scope="module")
def setup():
    task = get_task("knights_knaves")
    examples = task.generate(2, difficulty=2, seed=0) + task.generate(1, difficulty=3, seed=1)
    tokenizer = build_tokenizer(task.alphabet)
    model = build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    max_position_embeddings=256), tokenizer)
    return task, examples, tokenizer, model


def test_evaluate_model_rows_and_schema(setup) -> None:
    task, examples, tokenizer, model = setup
    cfg = EvalConfig(num_samples=3, max_new_tokens=6, prompts_per_batch=2, progress=False)
    model.train()
    rng_before = torch.get_rng_state()
    frame = evaluate_model("random", model, tokenizer, task, examples, cfg)
    assert model.training  # mode restored
    assert torch.equal(torch.get_rng_state(), rng_before)  # the evaluation seed does not leak into the caller
    assert dict(frame.schema) == SAMPLE_SCHEMA
    # 3 examples x (3 sampled + 1 greedy) rows, sampled block first, examples in input order
    assert frame.height == 3 * 4
    sampled = frame.filter(pl.col("decoding") == "sampled")
    assert sampled["example_id"].to_list() == [e.id for e in examples for _ in range(3)]
    assert sampled["sample_idx"].to_list() == [0, 1, 2] * 3
    greedy = frame.filter(pl.col("decoding") == "greedy")
    assert greedy["example_id"].to_list() == [e.id for e in examples]
    assert greedy["difficulty"].to_list() == [2, 2, 3]
    assert frame["n_tokens"].is_between(1, 6).all()  # at most max_new_tokens response tokens
    assert set(frame["verdict"].to_list()) <= {"correct", "wrong", "unparseable"}
    assert (frame["correct"] == (frame["verdict"] == "correct")).all()


def test_evaluate_model_is_seeded_and_greedy_is_deterministic(setup) -> None:
    task, examples, tokenizer, model = setup
    cfg = EvalConfig(num_samples=2, max_new_tokens=5, prompts_per_batch=3, progress=False, seed=7)
    first = evaluate_model("random", model, tokenizer, task, examples, cfg)
    assert first.equals(evaluate_model("random", model, tokenizer, task, examples, cfg))
    other = EvalConfig(num_samples=2, max_new_tokens=5, prompts_per_batch=1, progress=False, seed=8)
    greedy_a = first.filter(pl.col("decoding") == "greedy")
    greedy_b = evaluate_model("random", model, tokenizer, task, examples, other).filter(
        pl.col("decoding") == "greedy")
    assert greedy_a.equals(greedy_b)  # greedy ignores the seed and the batching


def test_greedy_only_and_sampled_only(setup) -> None:
    task, examples, tokenizer, model = setup
    only_greedy = EvalConfig(num_samples=0, max_new_tokens=4, progress=False)
    assert evaluate_model("m", model, tokenizer, task, examples, only_greedy)["decoding"].unique().to_list() == [
        "greedy"]
    only_sampled = EvalConfig(num_samples=2, greedy=False, max_new_tokens=4, progress=False)
    assert evaluate_model("m", model, tokenizer, task, examples, only_sampled).height == 2 * len(examples)


def test_batches_bucket_by_difficulty_and_length(setup) -> None:
    _, examples, _, _ = setup
    batches = _batches(list(reversed(examples)), 2)
    assert [len(b) for b in batches] == [2, 1]
    flat = [e for b in batches for e in b]
    assert [e.difficulty for e in flat] == sorted(e.difficulty for e in examples)


def test_generated_frame_feeds_the_summary_and_markdown(setup) -> None:
    from rl_distill.evaluation.summary import comparison_table, summarize, to_markdown

    task, examples, tokenizer, model = setup
    cfg = EvalConfig(num_samples=2, max_new_tokens=4, progress=False)
    frame = pl.concat([evaluate_model(name, model, tokenizer, task, examples, cfg) for name in ("grpo", "rlad")])
    summary = summarize(frame, ks=(1, 2), n_resamples=50)
    assert set(summary["difficulty"].to_list()) == {"all", "2", "3"}
    md = to_markdown(comparison_table(summary))
    assert md.splitlines()[2].startswith("| grpo | ") and "pass@2" in md.splitlines()[0]
