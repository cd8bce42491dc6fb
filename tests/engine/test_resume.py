"""Checkpoints that resume: interrupted + resumed == uninterrupted (bit-exact on CPU); broken checkpoints are skipped;
non-finite steps are skipped, counted and finally stop the run with the last good checkpoint intact."""

from __future__ import annotations

import math

import pytest
import torch

from rl_distill.engine.trainer import NonFiniteTrainingError, train
from rl_distill.models.checkpoint import CheckpointWarning, find_latest_checkpoint, list_checkpoints
from rl_distill.models.factory import build_model

from .conftest import STUDENT, make_config


class Interrupt(Exception):
    pass


def _train(out, tokenizer, task, examples, config, log_fn=None, reward_fn=None, teacher=None):
    model = build_model(STUDENT, tokenizer)
    result = train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples[0],
                   val_examples=examples[1], config=config, output_dir=out, log_fn=log_fn, progress=False,
                   reward_fn=reward_fn, teacher=teacher)
    return model, result


def _interrupt_at(step):
    def log_fn(metrics, at):
        if at == step:
            raise Interrupt
    return log_fn


def _assert_same_weights(a, b):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("loss", [{"name": "grpo", "config": {"compile": False}},
                                  {"name": "rlad", "config": {"compile": False}}])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, tokenizer, task, examples, teacher, loss):
    config = make_config(total_steps=5, loss=loss, validation={"every": 2})
    whole, whole_result = _train(tmp_path / "a", tokenizer, task, examples, config, teacher=teacher)
    with pytest.raises(Interrupt):  # dies during step 3, after the step-2 checkpoint
        _train(tmp_path / "b", tokenizer, task, examples, config, log_fn=_interrupt_at(3), teacher=teacher)
    assert [s for s, _ in list_checkpoints(tmp_path / "b" / "checkpoints")] == [2]
    resumed, result = _train(tmp_path / "b", tokenizer, task, examples, config, teacher=teacher)
    assert result.resumed_from == 2 and result.final_step == 5
    _assert_same_weights(whole, resumed)
    assert result.history["train/loss"] == whole_result.history["train/loss"]
    assert result.val_accuracy == whole_result.val_accuracy


def test_finished_run_restarts_as_a_no_op(tmp_path, tokenizer, task, examples):
    config = make_config()
    first, _ = _train(tmp_path, tokenizer, task, examples, config)
    again, result = _train(tmp_path, tokenizer, task, examples, config)
    assert result.resumed_from == 4 and result.final_step == 4
    _assert_same_weights(first, again)
    assert [s for s, _ in list_checkpoints(tmp_path / "checkpoints")] == [2, 4]  # keep_last=2


def test_corrupt_newest_checkpoint_is_skipped_and_the_run_still_matches(tmp_path, tokenizer, task, examples):
    config = make_config()
    whole, _ = _train(tmp_path / "a", tokenizer, task, examples, config)
    _train(tmp_path / "b", tokenizer, task, examples, config)
    weights = tmp_path / "b" / "checkpoints" / "step_000004" / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte: same size, wrong checksum
    weights.write_bytes(bytes(data))
    with pytest.warns(CheckpointWarning, match="step_000004.*checksum mismatch"):
        resumed, result = _train(tmp_path / "b", tokenizer, task, examples, config)
    assert result.resumed_from == 2 and result.final_step == 4
    _assert_same_weights(whole, resumed)


def test_resume_off_starts_over(tmp_path, tokenizer, task, examples):
    _train(tmp_path, tokenizer, task, examples, make_config())
    _, result = _train(tmp_path, tokenizer, task, examples, make_config(checkpoint={"resume": False}))
    assert result.resumed_from is None and result.final_step == 4


def _nan_reward_from(step_index):
    calls = {"n": 0}

    def reward_fn(completions, rows):
        calls["n"] += 1
        value = math.nan if calls["n"] >= step_index else -1.0 - 0.1 * (len(completions[0]) % 3)
        rewards = torch.tensor([value + 0.5 * (i % 2) for i in range(len(completions))])
        return rewards, {"accuracy": 0.0}

    return reward_fn


def test_isolated_nonfinite_step_is_skipped_and_counted(tmp_path, tokenizer, task, examples):
    calls = {"n": 0}

    def reward_fn(completions, rows):
        calls["n"] += 1
        bad = calls["n"] == 2
        return torch.tensor([math.nan if bad else float(i % 2) for i in range(len(completions))]), {}

    model, result = _train(tmp_path, tokenizer, task, examples, make_config(log_every=1), reward_fn=reward_fn)
    assert result.final_step == 4 and result.nonfinite_skipped == 1
    assert result.history["train/nonfinite_skipped"] == [(1, 0.0), (2, 1.0), (3, 1.0), (4, 1.0)]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nonfinite_streak_stops_with_last_good_checkpoint(tmp_path, tokenizer, task, examples):
    config = make_config(total_steps=8, checkpoint={"every": 1, "keep_last": 3}, max_nonfinite_steps=2)
    with pytest.raises(NonFiniteTrainingError, match="2 consecutive steps.*last good state"):
        _train(tmp_path, tokenizer, task, examples, config, reward_fn=_nan_reward_from(4))
    # Steps 1-3 were good (checkpointed); steps 4 and 5 had NaN rewards -> stop, nothing written for them.
    assert [s for s, _ in list_checkpoints(tmp_path / "checkpoints")] == [1, 2, 3]
    step, path = find_latest_checkpoint(tmp_path / "checkpoints")
    assert step == 3


def test_a_resume_says_from_which_step_and_checkpoint(tmp_path, tokenizer, task, examples, caplog, capsys):
    """One log line names the step and the checkpoint; the progress bar is named ``<model>/<phase>`` and starts
    at the resumed step."""
    config = make_config(total_steps=5)
    with pytest.raises(Interrupt):
        _train(tmp_path, tokenizer, task, examples, config, log_fn=_interrupt_at(3))
    model = build_model(STUDENT, tokenizer)
    with caplog.at_level("INFO", logger="rl_distill.engine.trainer"):
        train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples[0], val_examples=examples[1],
              config=config, output_dir=tmp_path, progress=True, label="student_init/grpo")
    lines = [r.getMessage() for r in caplog.records if "resuming" in r.getMessage()]
    assert lines == [f"student_init/grpo: resuming from step 2 of 5 (checkpoint "
                     f"{tmp_path / 'checkpoints' / 'step_000002'})"]
    bar = capsys.readouterr().err
    assert "student_init/grpo:  40%|" in bar and "| 5/5 " in bar, bar


def test_a_resume_relogs_the_checkpoint_history_so_its_run_holds_every_step_once(tmp_path, tokenizer, task,
                                                                                  examples):
    config = make_config(total_steps=5, validation={"every": 2, "at_start": True})
    whole, whole_result = _train(tmp_path / "a", tokenizer, task, examples, config)
    first: list[tuple[int, dict]] = []

    def dies_at_3(metrics, step):
        first.append((step, dict(metrics)))
        if step == 3:
            raise Interrupt

    model = build_model(STUDENT, tokenizer)
    with pytest.raises(Interrupt):  # dies while logging step 3, after the step-2 checkpoint
        train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples[0], val_examples=examples[1],
              config=config, output_dir=tmp_path / "b", log_fn=dies_at_3, progress=False, tracking_run="run-1")
    second: list[tuple[int, dict]] = []
    model = build_model(STUDENT, tokenizer)
    result = train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples[0],
                   val_examples=examples[1], config=config, output_dir=tmp_path / "b", progress=False,
                   log_fn=lambda m, s: second.append((s, dict(m))), tracking_run="run-2")
    assert result.resumed_from == 2 and result.earlier_tracking_runs == ("run-1",)
    assert [s for s, _ in first] == [0, 1, 2, 3]  # the interrupted run keeps what it logged, step 3 included
    # The resumed run: the checkpoint's steps 0-2 (re-logged), then 3-5 as trained; each step exactly once.
    assert [s for s, _ in second] == [0, 1, 2, 3, 4, 5]
    losses = [(s, m["train/loss"]) for s, m in second if "train/loss" in m]
    assert losses == whole_result.history["train/loss"]
    assert [(s, m["val/accuracy"]) for s, m in second if "val/accuracy" in m] == whole_result.history["val/accuracy"]
    assert [m for s, m in second if s <= 2] == [m for s, m in first if s <= 2]  # re-logged values are the originals
    _assert_same_weights(whole, model)


def test_a_resume_into_the_run_the_checkpoint_names_relogs_nothing(tmp_path, tokenizer, task, examples):
    config = make_config(total_steps=4)

    def dies_at_3(metrics, step):
        if step == 3:
            raise Interrupt

    model = build_model(STUDENT, tokenizer)
    with pytest.raises(Interrupt):
        train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples[0], val_examples=examples[1],
              config=config, output_dir=tmp_path / "b", log_fn=dies_at_3, progress=False, tracking_run="run-1")
    again: list[int] = []
    model = build_model(STUDENT, tokenizer)
    result = train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples[0],
                   val_examples=examples[1], config=config, output_dir=tmp_path / "b", progress=False,
                   log_fn=lambda m, s: again.append(s), tracking_run="run-1")  # the same run, reopened
    assert result.resumed_from == 2 and result.earlier_tracking_runs == ()
    assert again == [3, 4]  # run-1 already holds steps 1-2: only the newly trained steps are logged
