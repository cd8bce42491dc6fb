"""The node-side training adapter: the task a split trains with is built from the params its rows were made with."""

from __future__ import annotations

import json

import polars as pl
import pytest

from rl_distill.pipelines.training import single_task
from rl_distill.typed_config import ConfigError


def _frame(task: str, *params: dict) -> pl.DataFrame:
    return pl.DataFrame({"task": [task] * len(params), "params": [json.dumps(p, sort_keys=True) for p in params]})


def test_a_loaded_task_is_built_with_its_files_and_answer_settings():
    # Before: get_task("jsonl") without params -> "data_files: give at least one jsonl/json/parquet file."
    task = single_task(_frame("jsonl", *[{"data_files": ["data/01_raw/a.jsonl"], "answer_kind": "exact"}] * 3))
    assert task.config.data_files == ("data/01_raw/a.jsonl",) and task.config.answer_kind == "exact"
    assert not task.answers_match("0.5", "1/2")  # exact answers: math-equal is not enough
    assert single_task(_frame("jsonl", {"data_files": ["a.jsonl"]})).answers_match("0.5", "1/2")


def test_procedural_subsets_with_other_generation_params_share_one_verifier():
    task = single_task(_frame("knights_knaves", {}, {"max_depth": 2, "nested_prob": 0.4}))
    # the first params JSON in sorted order builds it ('{"max_depth": 2, ...}' < '{}')
    assert task.name == "knights_knaves" and task.config.max_depth == 2


def test_a_loaded_task_from_two_params_sets_is_refused():
    with pytest.raises(ConfigError, match=r"task 'jsonl' come from 2 different params sets.*one params block"):
        single_task(_frame("jsonl", {"data_files": ["a.jsonl"]}, {"data_files": ["b.jsonl"]}))


def test_two_task_families_are_refused():
    frame = pl.concat([_frame("arithmetic", {}), _frame("knights_knaves", {})])
    with pytest.raises(ConfigError, match=r"exactly one task family, got \['arithmetic', 'knights_knaves'\]"):
        single_task(frame)


def test_a_pretrained_model_whose_tokenizer_differs_fails_before_training(tmp_path):
    from rl_distill.models.factory import ModelConfig, build_model
    from rl_distill.models.tokenizer import build_tokenizer
    from rl_distill.pipelines.model_configs import train_from_scratch

    theirs, ours = build_tokenizer("abc"), build_tokenizer("abd")
    build_model(ModelConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2), theirs).save_pretrained(
        tmp_path / "other")
    theirs.save_pretrained(tmp_path / "other")
    cfg = ModelConfig(source="pretrained", path=str(tmp_path / "other"))
    with pytest.raises(ConfigError, match=r"student_init.model \(.*other\) and project tokenizer tokenizers differ: "
                                          r"vocab sizes 11 vs 11; first differing token at id 10: 'c' vs 'd'"):
        train_from_scratch("student_init", None, cfg, [], pl.DataFrame(), pl.DataFrame(), ours)
    assert not (tmp_path / "checkpoints").exists()
