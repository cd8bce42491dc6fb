"""The one training loop: every method runs through it, metrics reach log_fn, SFT mode, early stopping, errors."""

from __future__ import annotations

import functools
import math
import os

import pytest
import torch

import rl_distill.engine.rl_step as rl_step_module
import rl_distill.engine.update as update_module
import rl_distill.rollout.base as rollout_base
from rl_distill.engine.frozen_stream import FrozenStream
from rl_distill.engine.rl_step import concurrent_scoring_enabled
from rl_distill.engine.trainer import train
from rl_distill.models.factory import build_model, load_model_dir

from .conftest import STUDENT, make_config

RL_METRICS = {
    "train/loss", "train/clipfrac_low", "train/clipfrac_high", "train/grad_norm", "train/lr", "rollout/reward_mean",
    "rollout/reward_std", "rollout/zero_adv_frac", "rollout/response_len_mean", "rollout/accuracy", "val/accuracy",
    "time/rollout_s", "time/teacher_s", "time/update_s", "time/step_s", "train/nonfinite_skipped",
}


def _run(tmp_path, student, tokenizer, task, examples, config, **kwargs):
    logs = []
    result = train(policy=student, tokenizer=tokenizer, task=task, train_examples=examples[0],
                   val_examples=examples[1], config=config, output_dir=tmp_path, progress=False,
                   log_fn=lambda metrics, step: logs.append((step, metrics)), **kwargs)
    return result, logs


def test_grpo_logs_every_metric_and_writes_a_loadable_model(tmp_path, student, tokenizer, task, examples):
    config = make_config(log_every=2)
    result, logs = _run(tmp_path, student, tokenizer, task, examples, config)
    assert [step for step, _ in logs] == [2, 4]
    assert set(logs[-1][1]) >= RL_METRICS  # val/accuracy arrives with the last step's logs
    assert all(math.isfinite(v) for _, m in logs for v in m.values())
    assert result.final_step == 4 and result.val_accuracy is not None
    assert result.history["train/loss"][-1][0] == 4 and result.summary["train/lr"] == logs[-1][1]["train/lr"]
    model, tok = load_model_dir(result.final_model_dir)
    for (name, p), q in zip(model.state_dict().items(), student.state_dict().values()):
        assert torch.equal(p, q), name
    assert tok.get_vocab() == tokenizer.get_vocab()


@pytest.mark.parametrize("loss", [
    {"name": "kl_kd", "config": {"compile": False}},
    {"name": "kl_kd", "config": {"compile": False, "full_vocab": True}},  # full teacher logits cached per step
    {"name": "rlad", "config": {"compile": False, "alpha": 0.5}},
])
def test_teacher_methods_run_through_the_same_loop(tmp_path, student, teacher, tokenizer, task, examples, loss):
    before = teacher.state_dict()["model.embed_tokens.weight"].clone()
    config = make_config(loss=loss, teacher_dtype="float32")  # its own dtype: frozen in place, not copied
    result, logs = _run(tmp_path, student, tokenizer, task, examples, config, teacher=teacher,
                        teacher_tokenizer=tokenizer)
    assert result.final_step == 4
    assert all(m["time/teacher_s"] > 0 for _, m in logs)
    assert torch.equal(teacher.state_dict()["model.embed_tokens.weight"], before)  # the teacher is frozen
    assert not any(p.requires_grad for p in teacher.parameters())


def test_rlad_with_alpha_one_trains_exactly_like_grpo(tmp_path, tokenizer, task, examples, teacher):
    grpo_model, rlad_model = build_model(STUDENT, tokenizer), build_model(STUDENT, tokenizer)
    _run(tmp_path / "grpo", grpo_model, tokenizer, task, examples, make_config())
    rlad = make_config(loss={"name": "rlad", "config": {"compile": False, "alpha": 1.0}})
    _run(tmp_path / "rlad", rlad_model, tokenizer, task, examples, rlad, teacher=teacher)
    for p, q in zip(grpo_model.parameters(), rlad_model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("loss", "with_teacher"), [
    ({"name": "rlad", "config": {"compile": False, "alpha": 0.5}}, True),
    ({"name": "kl_kd", "config": {"compile": False, "full_vocab": True}}, True),
    ({"name": "grpo", "config": {"compile": False, "beta": 0.1}}, False),  # the reference model, not a teacher
])
def test_concurrent_scoring_trains_like_sequential(tmp_path, monkeypatch, tokenizer, task, examples, teacher, loss,
                                                   with_teacher):
    seen: dict[str, list] = {}
    real_loss_on = update_module._loss_on

    def spy(model, loss_fn, data, settings, progress):  # what every micro-batch's loss is given
        frozen = data.teacher_logprobs if data.teacher_logprobs is not None else data.ref_logprobs
        seen.setdefault(label, []).append((data.input_ids.clone(), frozen.clone()))
        return real_loss_on(model, loss_fn, data, settings, progress)

    monkeypatch.setattr(update_module, "_loss_on", spy)

    def run(mode, bucket_rows=None):
        nonlocal label
        label = f"{mode}{bucket_rows}"
        if bucket_rows is not None:
            monkeypatch.setattr(rl_step_module, "FrozenStream", functools.partial(FrozenStream,
                                                                                   bucket_rows=bucket_rows))
        model = build_model(STUDENT, tokenizer)
        result, logs = _run(tmp_path / label, model, tokenizer, task,
                            examples, make_config(loss=loss, concurrent_scoring=mode, teacher_dtype="float32",
                                                  rollout={"max_new_tokens": 24, "temperature": 3.0}),
                            teacher=teacher if with_teacher else None)
        return model, result, logs

    label = ""
    seq_model, seq, _ = run("off")
    # On, with rows too few for a bucket: the worker scores them all after the rollout, exactly as sequentially.
    con_model, con, con_logs = run("on")
    for (name, p), q in zip(seq_model.state_dict().items(), con_model.state_dict().values()):
        assert torch.equal(p, q), name
    assert seq.history["train/loss"] == con.history["train/loss"]
    assert all(m["time/frozen_busy_s"] > 0 and m["time/frozen_streamed_frac"] == 0 for _, m in con_logs)
    # Streamed one row at a time while the rollout runs: the same samples, and frozen scores equal up to fp32
    # rounding (a row's values depend on which rows share its forward only through the kernels' summation order;
    # a bf16 teacher's rounding depends on it more: hence float32 here).
    str_model, streamed, str_logs = run("on", bucket_rows=1)
    assert any(m["time/frozen_streamed_frac"] > 0 for _, m in str_logs)
    assert streamed.history["rollout/reward_mean"] == seq.history["rollout/reward_mean"]
    assert len(seen["onNone"]) == len(seen["on1"]) == len(seen["offNone"]) == 4 * 4  # 4 steps x mu 2 x 2 micro
    # With the reference alone, only the first step: there the policy equals the reference, every group has zero
    # advantage and the true gradient is 0, so AdamW's normalisation turns the 1e-7 rounding of the KL term into
    # full learning-rate steps; the weights then differ by ~lr and later steps sample other tokens.
    compared = 16 if with_teacher else 4
    for (seq_ids, seq_frozen), (str_ids, str_frozen) in list(zip(seen["offNone"], seen["on1"]))[:compared]:
        assert torch.equal(seq_ids, str_ids)  # the same rows in the same micro-batches
        torch.testing.assert_close(str_frozen, seq_frozen, atol=1e-5, rtol=1e-5)
    if with_teacher:  # then the update too
        for (name, p), q in zip(seq_model.state_dict().items(), str_model.state_dict().values()):
            torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("loss", [
    {"name": "rlad", "config": {"compile": False, "alpha": 0.5}},
    {"name": "kl_kd", "config": {"compile": False, "full_vocab": True}},  # bf16 teacher logits, fp32 KL
])
def test_teacher_scores_in_teacher_dtype_on_a_copy(tmp_path, monkeypatch, student, teacher, tokenizer, task,
                                                   examples, loss):
    seen = []
    real = rl_step_module.frozen_models

    def spy(parts, loss_fn):
        models = real(parts, loss_fn)
        seen.extend(next(m.model.parameters()).dtype for m in models)
        return models

    monkeypatch.setattr(rl_step_module, "frozen_models", spy)
    result, logs = _run(tmp_path, student, tokenizer, task, examples,
                        make_config(loss=loss, teacher_dtype="bfloat16"), teacher=teacher)
    assert result.final_step == 4 and set(seen) == {torch.bfloat16}
    assert all(math.isfinite(v) for _, m in logs for v in m.values())
    assert next(teacher.parameters()).dtype == torch.float32  # the caller's teacher keeps its precision


def test_concurrent_scoring_auto_rule(monkeypatch):
    cpu = torch.device("cpu")
    assert concurrent_scoring_enabled("on", torch.device("cuda")) and not concurrent_scoring_enabled("off", cpu)
    assert not concurrent_scoring_enabled("auto", torch.device("cuda"))  # both passes would queue on one GPU
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert concurrent_scoring_enabled("auto", cpu)  # 2 passes x 1 thread on 2 cores (autouse: one torch thread)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert not concurrent_scoring_enabled("auto", cpu)  # 2 processes x 2 passes would share 2 cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    torch.set_num_threads(2)
    assert not concurrent_scoring_enabled("auto", cpu)


def test_reference_is_copied_when_beta_is_positive(tmp_path, student, tokenizer, task, examples):
    config = make_config(loss={"name": "grpo", "config": {"compile": False, "beta": 0.1}}, total_steps=2)
    _, logs = _run(tmp_path, student, tokenizer, task, examples, config)
    assert "train/kl_ref" in logs[-1][1]


def test_missing_teacher_fails_before_training(tmp_path, student, tokenizer, task, examples):
    with pytest.raises(ValueError, match="needs a teacher"):
        _run(tmp_path, student, tokenizer, task, examples, make_config(loss={"name": "rlad"}))
    assert not (tmp_path / "checkpoints").exists()


def test_sft_mode_lowers_the_loss(tmp_path, student, tokenizer, task, examples):
    config = make_config(loss={"name": "sft"}, total_steps=12, sft={"batch_size": 8}, optimizer={"lr": 3e-3},
                         mini_batch_size=8, log_every=1)
    _, logs = _run(tmp_path, student, tokenizer, task, examples, config)
    nll = [m["train/nll"] for _, m in logs]
    assert nll[-1] < nll[0] - 0.5
    assert "rollout/reward_mean" not in logs[-1][1]


def test_early_stopping_stops_and_stays_stopped(tmp_path, student, tokenizer, task, examples):
    # A random model scores 0 on every validation: no improvement after the first -> stop after patience=1.
    config = make_config(total_steps=6, validation={"every": 1}, early_stopping={"patience": 1})
    result, first = _run(tmp_path, student, tokenizer, task, examples, config)
    assert result.stopped_early and result.final_step == 2
    again, logs = _run(tmp_path, student, tokenizer, task, examples, config)
    # no further step: the restart only re-logs the checkpoint's history (into its own tracking run)
    assert again.final_step == 2 and again.resumed_from == 2 and logs == first


def test_overlong_filtering_gives_truncated_responses_no_loss(tmp_path, monkeypatch, tokenizer, task, examples):
    # 4 new tokens: the untrained student reaches eos in some rows only. Capture what the update receives.
    seen = []
    real = rl_step_module.run_updates

    def spy(learner, data, *args, **kwargs):
        seen.append(data.response_mask.clone())
        return real(learner, data, *args, **kwargs)

    monkeypatch.setattr(rl_step_module, "run_updates", spy)
    masks = {}
    for mask in (False, True):
        seen.clear()
        config = make_config(rollout={"group_size": 2, "max_new_tokens": 4}, overlong={"mask_truncated": mask},
                             total_steps=3)
        _run(tmp_path / str(mask), build_model(STUDENT, tokenizer), tokenizer, task, examples, config)
        masks[mask] = [m.clone() for m in seen]
    for plain, filtered in zip(masks[False], masks[True]):
        kept = filtered.sum(dim=1) > 0
        # a row keeps its whole mask iff it ended in eos (mask length < 4 or last real token = eos)
        assert torch.equal(filtered[kept], plain[kept]) and filtered[~kept].sum() == 0
    n_rows = sum(m.shape[0] for m in masks[True])
    n_kept = sum(int((m.sum(dim=1) > 0).sum()) for m in masks[True])
    assert 0 < n_kept < n_rows  # both kinds occurred, so the filter was exercised


def test_soft_overlong_penalty_enters_the_reward(tmp_path, student, tokenizer, task, examples):
    # Every response has 3 tokens = L_max, so with L_cache = 2 each gets the full -1 on top of its outcome reward.
    base = make_config(rollout={"group_size": 2, "max_new_tokens": 3}, total_steps=1)
    penalised = make_config(rollout={"group_size": 2, "max_new_tokens": 3}, overlong={"penalty_cache": 2},
                            total_steps=1)
    _, plain = _run(tmp_path / "a", build_model(STUDENT, tokenizer), tokenizer, task, examples, base)
    _, logs = _run(tmp_path / "b", build_model(STUDENT, tokenizer), tokenizer, task, examples, penalised)
    assert logs[0][1]["rollout/overlong_penalty_mean"] == -1.0
    assert logs[0][1]["rollout/reward_mean"] == pytest.approx(plain[0][1]["rollout/reward_mean"] - 1.0)


def test_kl_kd_linear_anneal_reaches_its_end_value_on_the_last_step(tmp_path, student, teacher, tokenizer, task,
                                                                    examples):
    # 4 steps: progress 0, 1/3, 2/3, 1 -> beta_kd 5e-3, 3.667e-3, 2.333e-3, 1e-3 (KDRL's 5e-3 -> 1e-3)
    config = make_config(loss={"name": "kl_kd", "config": {"compile": False}}, log_every=1, teacher_dtype="float32")
    _, logs = _run(tmp_path, student, tokenizer, task, examples, config, teacher=teacher)
    betas = [m["train/beta_kd"] for _, m in logs]
    assert betas == pytest.approx([5e-3, 5e-3 - 4e-3 / 3, 5e-3 - 8e-3 / 3, 1e-3])


def test_validation_at_start_scores_the_untouched_model_once(tmp_path, monkeypatch, student, tokenizer, task,
                                                             examples):
    import rl_distill.engine.trainer as trainer_module

    start = {k: v.clone() for k, v in student.state_dict().items()}
    seen = []
    real_call = trainer_module._Validator.__call__

    def spy(self, model, engine):
        seen.append(all(torch.equal(p, start[k]) for k, p in model.state_dict().items()))
        return real_call(self, model, engine)

    monkeypatch.setattr(trainer_module._Validator, "__call__", spy)
    config = make_config(loss={"name": "sft"}, total_steps=2, sft={"batch_size": 8}, optimizer={"lr": 3e-3},
                         mini_batch_size=8, log_every=1,
                         validation={"every": 0, "max_examples": 4, "batch_size": 4, "at_start": True})
    result, first = _run(tmp_path, student, tokenizer, task, examples, config)
    assert first[0][0] == 0 and set(first[0][1]) >= {"val/accuracy"} and "train/loss" not in first[0][1]
    assert seen == [True, False]  # step 0 sees the initial weights; the end-of-run validation sees trained ones
    assert [step for step, _ in result.history["val/accuracy"]] == [0, 2]
    again, logs = _run(tmp_path, student, tokenizer, task, examples, config)  # resumed at the end: no re-validation
    assert again.resumed_from == 2 and seen == [True, False] and logs == first  # only the history, re-logged


@pytest.mark.parametrize(("loss", "with_teacher"), [
    ({"name": "grpo", "config": {"compile": False}}, False),
    ({"name": "rlad", "config": {"compile": False, "alpha": 0.5}}, True),  # the anchor mixes in pi_old
])
def test_skipping_the_redundant_old_logprob_forward_trains_identically(tmp_path, monkeypatch, tokenizer, task,
                                                                      examples, teacher, loss, with_teacher):
    """mu = 1 and one optimizer update per step: the update's own detached log-probs replace the old-policy pass
    (TRL's shortcut); the weights after 4 steps match the full pass within 1e-6, and the pass really is skipped."""
    calls = []
    real = rollout_base.old_policy_logprobs
    monkeypatch.setattr(rollout_base, "old_policy_logprobs", lambda *a, **k: calls.append(1) or real(*a, **k))

    def run(mode):
        model = build_model(STUDENT, tokenizer)
        config = make_config(loss=loss, mu=1, mini_batch_size=2, grad_accum_steps=2, old_logprobs=mode,
                             concurrent_scoring="on" if with_teacher else "off", teacher_dtype="float32",
                             rollout={"max_new_tokens": 24, "temperature": 2.0})
        result, logs = _run(tmp_path / mode, model, tokenizer, task, examples, config,
                            teacher=teacher if with_teacher else None, reward_fn=by_length)
        return model, result, logs

    def by_length(texts, rows):  # an untrained model never solves a sum: reward length so that groups differ
        return torch.tensor([float(len(t)) for t in texts]), {}

    full_model, full, full_logs = run("forward")
    full_calls, calls[:] = len(calls), []
    fast_model, fast, fast_logs = run("auto")
    assert full_calls == 4 and calls == []  # one pass per step, and none with the shortcut
    assert all(m["rollout/old_logprobs_skipped"] == 1.0 for _, m in fast_logs)
    assert all(m["rollout/old_logprobs_skipped"] == 0.0 for _, m in full_logs)
    assert fast.history["rollout/reward_mean"] == full.history["rollout/reward_mean"]  # the same samples
    for (name, p), q in zip(full_model.state_dict().items(), fast_model.state_dict().values()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=name)
    assert not all(torch.equal(p, q) for p, q in zip(fast_model.parameters(),
                                                     build_model(STUDENT, tokenizer).parameters()))  # it trained


def test_the_old_logprob_shortcut_only_applies_when_it_is_provably_redundant(tokenizer):
    from rl_distill.engine.update import (
        UpdateSettings,
        has_active_dropout,
        old_logprobs_redundant,
        resolve_old_logprobs,
    )

    model = build_model(STUDENT, tokenizer)
    one_update = UpdateSettings(mini_batch_size=64, grad_accum_steps=1, max_grad_norm=1.0)
    assert old_logprobs_redundant(64, one_update, epochs=1)
    assert not old_logprobs_redundant(65, one_update, epochs=1)  # a second micro-batch sees updated weights
    assert not old_logprobs_redundant(64, one_update, epochs=2)  # mu = 2: the second epoch is off-policy
    accumulated = UpdateSettings(mini_batch_size=32, grad_accum_steps=4, max_grad_norm=1.0)
    assert old_logprobs_redundant(128, accumulated, epochs=1) and not old_logprobs_redundant(129, accumulated, epochs=1)
    assert not has_active_dropout(model) and resolve_old_logprobs("auto", model) == "auto"
    model.config.attention_dropout = 0.1  # HF attention applies it functionally in train mode
    assert has_active_dropout(model) and resolve_old_logprobs("auto", model) == "forward"
    assert resolve_old_logprobs("sampler", model) == "sampler"  # only auto is decided by the model
    model.config.attention_dropout = 0.0
    model.model.layers[0].mlp.add_module("drop", torch.nn.Dropout(0.2))
    assert has_active_dropout(model) and resolve_old_logprobs("auto", model) == "forward"


@pytest.mark.slow
def test_compiled_update_trains_like_eager(tmp_path, tokenizer, task, examples):
    """compile_update: the loss's forward/backward through torch.compile of the policy (shared parameters)."""
    def run(compiled):
        model = build_model(STUDENT, tokenizer)
        result, _ = _run(tmp_path / str(compiled), model, tokenizer, task, examples,
                         make_config(compile_update=compiled, rollout={"max_new_tokens": 12, "temperature": 2.0}),
                         reward_fn=lambda texts, rows: (torch.tensor([float(len(t)) for t in texts]), {}))
        return model, result

    eager_model, eager = run(False)
    compiled_model, compiled = run(True)
    assert compiled.history["rollout/reward_mean"][:2] == eager.history["rollout/reward_mean"][:2]
    torch.testing.assert_close(torch.tensor([v for _, v in compiled.history["train/loss"]]),
                               torch.tensor([v for _, v in eager.history["train/loss"]]), atol=1e-5, rtol=1e-4)
    start = build_model(STUDENT, tokenizer)
    assert not all(torch.equal(p, q) for p, q in zip(compiled_model.parameters(), start.parameters()))  # it trained
    for (name, p), q in zip(eager_model.state_dict().items(), compiled_model.state_dict().values()):
        torch.testing.assert_close(q, p, atol=1e-4, rtol=1e-4, msg=name)


def test_sampler_old_logprobs_train_like_the_forward_pass(tmp_path, tokenizer, task, examples):
    """old_logprobs: sampler with mu = 2 (the pass is not redundant): the recorded log-probs replace it."""
    def run(mode):
        model = build_model(STUDENT, tokenizer)
        result, logs = _run(tmp_path / mode, model, tokenizer, task, examples,
                            make_config(old_logprobs=mode, rollout={"max_new_tokens": 12, "temperature": 2.0}),
                            reward_fn=lambda texts, rows: (torch.tensor([float(len(t)) for t in texts]), {}))
        return model, result, logs

    forward_model, forward, _ = run("forward")
    sampler_model, sampler, logs = run("sampler")
    assert all(m["rollout/old_logprobs_skipped"] == 0.0 for _, m in logs)  # mu = 2: not the shortcut
    assert sampler.history["rollout/reward_mean"] == forward.history["rollout/reward_mean"]
    for (name, p), q in zip(forward_model.state_dict().items(), sampler_model.state_dict().values()):
        torch.testing.assert_close(q, p, atol=1e-4, rtol=1e-4, msg=name)


def test_sampler_old_logprobs_are_validated():
    from rl_distill.typed_config import ConfigError

    with pytest.raises(ConfigError, match="min_new_tokens=0"):
        make_config(old_logprobs="sampler", rollout={"min_new_tokens": 2})
    with pytest.raises(ConfigError, match="repetition_penalty=1"):
        make_config(old_logprobs="sampler", rollout={"repetition_penalty": 1.05})
    with pytest.raises(ConfigError, match="old_logprobs='sample' is not valid"):
        make_config(old_logprobs="sample")
