"""``sft.target``: SFT learns ``trace`` (with "wait," self-corrections) or ``trace_clean`` (the same derivation
without them). The default is ``trace`` everywhere; README's results section measures a teacher trained on the
clean one."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest
import torch

from rl_distill.engine.config import SFTConfig
from rl_distill.engine.sft_step import sft_data
from rl_distill.engine.trainer import train
from rl_distill.pipelines.training import frame_to_examples
from rl_distill.tasks.base import Example
from rl_distill.typed_config import ConfigError

from .conftest import make_config


def _response(tokenizer, data) -> str:
    ids = data.input_ids[0, data.response_start:][data.response_mask[0].bool()]
    return tokenizer.decode(ids, skip_special_tokens=True)


def test_sft_data_lays_out_the_chosen_completion(tokenizer) -> None:
    ex = Example(id="x", task="arithmetic", difficulty=1, prompt="1+2=", trace="4 wait, 3", answer="3",
                 trace_clean="3")
    assert _response(tokenizer, sft_data(tokenizer, [ex], torch.device("cpu"))) == "4 wait, 3"
    assert _response(tokenizer, sft_data(tokenizer, [ex], torch.device("cpu"), "trace_clean")) == "3"


def test_a_missing_clean_trace_names_the_fix(tokenizer) -> None:
    ex = Example(id="sampled-7", task="arithmetic", difficulty=1, prompt="1+2=", trace="3", answer="3")
    with pytest.raises(ValueError, match=r"sampled-7.*no trace_clean.*set sft.target to 'trace'"):
        sft_data(tokenizer, [ex], torch.device("cpu"), "trace_clean")


def test_training_refuses_a_clean_target_without_clean_traces(tmp_path, tokenizer, task, student) -> None:
    """Teacher samples (offline_kd) have no clean twin: train() fails before any setup, naming examples and fix."""
    generated = task.generate(4, 1, seed=0)
    sampled = [dataclasses.replace(ex, id=f"sample-{i}", trace_clean=None) for i, ex in enumerate(generated)]
    before = [p.detach().clone() for p in student.parameters()]
    config = make_config(loss={"name": "sft"}, total_steps=2, sft={"batch_size": 2, "target": "trace_clean"},
                         mini_batch_size=2, mu=1)
    named = r"4 of 4 training examples \(e.g. \['sample-0', 'sample-1', 'sample-2'\]\) have no trace_clean"
    with pytest.raises(ConfigError, match=named):
        train(policy=student, tokenizer=tokenizer, task=task, train_examples=sampled, val_examples=sampled[:1],
              config=config, output_dir=tmp_path, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))
    assert not (tmp_path / "checkpoints").exists()


def test_sft_target_is_validated() -> None:
    with pytest.raises(ConfigError, match="target"):
        SFTConfig(target="clean")


def test_frame_to_examples_carries_the_clean_trace() -> None:
    row = {"id": "a", "task": "arithmetic", "difficulty": 1, "prompt": "1+2=", "trace": "4 wait, 3", "answer": "3"}
    assert frame_to_examples(pl.DataFrame([row]))[0].trace_clean is None
    assert frame_to_examples(pl.DataFrame([{**row, "trace_clean": "3"}]))[0].trace_clean == "3"


def _completion_logprob(model, tokenizer, ex: Example, target: str) -> float:
    data = sft_data(tokenizer, [ex], torch.device("cpu"), target)
    with torch.no_grad():
        logits = model(input_ids=data.input_ids, attention_mask=data.attention_mask).logits[0, :-1]
    lp = torch.log_softmax(logits.float(), -1).gather(1, data.input_ids[0, 1:, None])[:, 0]
    return float((lp[data.response_start - 1:] * data.response_mask[0]).sum())


def test_training_on_the_clean_target_learns_it(tmp_path, tokenizer, task, student) -> None:
    """Every trace is corrupted ("9 wait, " before the answer); trained on ``trace_clean`` the student makes the clean
    completion more likely than the corrupted one, and learns nothing of the corruption."""
    clean = task.generate(16, 1, seed=0)
    dirty = [dataclasses.replace(ex, trace="9 wait, " + ex.trace, trace_clean=ex.trace) for ex in clean]
    config = make_config(loss={"name": "sft"}, total_steps=30, sft={"batch_size": 8, "target": "trace_clean"},
                         mini_batch_size=8, mu=1, optimizer={"lr": 1e-2}, checkpoint={"every": 1000})
    train(policy=student, tokenizer=tokenizer, task=task, train_examples=dirty, val_examples=dirty[:2],
          config=config, output_dir=tmp_path, progress=False)
    for ex in dirty[:4]:
        assert _completion_logprob(student, tokenizer, ex, "trace_clean") > \
            _completion_logprob(student, tokenizer, ex, "trace") + 2.0
