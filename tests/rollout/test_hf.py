"""The hf engine: shapes and grouping, eos handling, old log-probs equal the sampler's, greedy determinism."""

from __future__ import annotations

import pytest
import torch

from rl_distill.rollout.base import RolloutConfig, build_rollout_engine
from rl_distill.rollout.hf import generation_config
from rl_distill.typed_config import ConfigError


def test_batch_layout_and_grouping(model, tokenizer):
    cfg = RolloutConfig(group_size=3, max_new_tokens=10)
    torch.manual_seed(0)
    batch = build_rollout_engine(cfg).generate(model, tokenizer, ["1+2\n", "12+34\n"], cfg)
    n, t = batch.response_ids.shape
    assert n == 6 and t <= 10
    assert batch.prompt_ids.shape == (6, 7) and batch.prompt_mask.shape == (6, 7)
    assert batch.prompt_index.tolist() == [0, 0, 0, 1, 1, 1]  # G consecutive rows per prompt
    assert torch.equal(batch.prompt_ids[0], batch.prompt_ids[2])
    assert batch.old_logprobs.shape == (6, t) and batch.old_logprobs.dtype == torch.float32
    assert (batch.old_logprobs[batch.response_mask == 0] == 0).all()
    assert (batch.old_logprobs[batch.response_mask == 1] < 0).all()
    assert len(batch.texts) == 6
    # Every row either ends with eos inside its mask or runs to the width limit.
    for row, mask in zip(batch.response_ids, batch.response_mask):
        length = int(mask.sum())
        assert row[length - 1] == tokenizer.eos_token_id or length == 10
        assert (row[length:] == tokenizer.pad_token_id).all()
    assert batch.input_ids.shape == (6, 7 + t) and batch.response_start == 7


def test_old_logprobs_match_the_sampling_distribution(model, tokenizer):
    cfg = RolloutConfig(group_size=2, max_new_tokens=8, temperature=0.7)
    torch.manual_seed(5)
    batch = build_rollout_engine(cfg).generate(model, tokenizer, ["3+4\n", "56+78\n"], cfg)
    torch.manual_seed(5)  # replay the same sampling and keep generate's own (processed) scores
    out = model.generate(input_ids=batch.prompt_ids, attention_mask=batch.prompt_mask,
                         generation_config=generation_config(tokenizer, cfg), output_scores=True,
                         return_dict_in_generate=True)
    sampled = out.sequences[:, batch.response_start:]
    t = batch.response_ids.shape[1]
    assert torch.equal(sampled[:, :t] * batch.response_mask, batch.response_ids * batch.response_mask)
    scores = torch.stack(out.scores, dim=1)[:, :t].float()  # logits / temperature: [N, T, V]
    logprobs = torch.log_softmax(scores, -1).gather(-1, sampled[:, :t, None]).squeeze(-1)
    torch.testing.assert_close(logprobs * batch.response_mask, batch.old_logprobs, atol=1e-4, rtol=1e-4)


def test_greedy_is_deterministic_and_skips_scoring(model, tokenizer):
    cfg = RolloutConfig(group_size=2, max_new_tokens=6, temperature=0.0)
    engine = build_rollout_engine(cfg)
    a = engine.generate(model, tokenizer, ["9+9\n"], cfg, with_logprobs=False)
    b = engine.generate(model, tokenizer, ["9+9\n"], cfg, with_logprobs=False)
    assert torch.equal(a.response_ids, b.response_ids)
    assert torch.equal(a.response_ids[0], a.response_ids[1])
    assert (a.old_logprobs == 0).all()


def test_generation_batches_give_same_rows(model, tokenizer):
    cfg = RolloutConfig(group_size=2, max_new_tokens=6, temperature=0.0)
    chunked = RolloutConfig(group_size=2, max_new_tokens=6, temperature=0.0, generation_batch_size=3,
                            logprob_batch_size=2)
    engine = build_rollout_engine(cfg)
    a = engine.generate(model, tokenizer, ["1+1\n", "22+33\n"], cfg)
    b = engine.generate(model, tokenizer, ["1+1\n", "22+33\n"], chunked)
    assert torch.equal(a.response_ids, b.response_ids)
    torch.testing.assert_close(a.old_logprobs, b.old_logprobs, atol=1e-5, rtol=1e-5)


def test_model_mode_is_restored(model, tokenizer):
    model.train()
    cfg = RolloutConfig(group_size=1, max_new_tokens=3)
    build_rollout_engine(cfg).generate(model, tokenizer, ["1+1\n"], cfg)
    assert model.training


def test_min_new_tokens_keeps_eos_out_of_the_first_tokens(model, tokenizer):
    eos = tokenizer.eos_token_id

    def favour_eos(module, args, logits):  # eos is the most likely token at every position
        logits[..., eos] += 20.0
        return logits

    model.lm_head.register_forward_hook(favour_eos)
    free = RolloutConfig(group_size=4, max_new_tokens=12)
    held = RolloutConfig(group_size=4, max_new_tokens=12, min_new_tokens=5)
    torch.manual_seed(0)
    short = build_rollout_engine(free).generate(model, tokenizer, ["1+2\n", "3+4\n"], free, with_logprobs=False)
    torch.manual_seed(0)
    long = build_rollout_engine(held).generate(model, tokenizer, ["1+2\n", "3+4\n"], held)
    assert short.response_lengths.tolist() == [1] * 8  # eos at once without the floor
    lengths = long.response_lengths
    assert (lengths == 6).all()  # five forced tokens, then eos (the eos logit still dominates)
    assert (long.response_ids[:, :5] != eos).all() and (long.response_ids[:, 5] == eos).all()
    # The old log-probs are the unconstrained policy's (eos is not masked out of the scoring softmax): each forced
    # token is unlikely, the final eos almost certain.
    assert (long.old_logprobs[:, :5] < -10).all() and (long.old_logprobs[:, 5] > -1e-3).all()


def test_min_new_tokens_is_validated():
    with pytest.raises(ConfigError, match="min_new_tokens=20 is out of range"):
        RolloutConfig(max_new_tokens=16, min_new_tokens=20)
    with pytest.raises(ConfigError, match="min_new_tokens=-1"):
        RolloutConfig(min_new_tokens=-1)


def _samples(model, tokenizer, cfg, prompts, seed=3):
    torch.manual_seed(seed)
    return build_rollout_engine(cfg).generate(model, tokenizer, prompts, cfg)


@pytest.mark.parametrize("options", [{"cache": "static"}, {"prompt_multiple": 8}])
def test_static_cache_and_prompt_padding_sample_the_same_rows(model, tokenizer, options):
    prompts = ["1+2\n", "12+34\n", "5+67\n"]  # different lengths: left padding inside the batch too
    plain = _samples(model, tokenizer, RolloutConfig(group_size=2, max_new_tokens=12, temperature=1.5), prompts)
    other = _samples(model, tokenizer, RolloutConfig(group_size=2, max_new_tokens=12, temperature=1.5,
                                                     engine_options=options), prompts)
    assert torch.equal(plain.response_ids, other.response_ids)
    assert plain.texts == other.texts
    torch.testing.assert_close(plain.old_logprobs, other.old_logprobs, atol=1e-6, rtol=0)


@pytest.mark.slow
def test_compiled_static_decode_samples_the_same_rows(model, tokenizer):
    """torch.compile'd decode steps (one graph per shape; prompts padded to a multiple so two lengths share it)."""
    cfg = RolloutConfig(group_size=2, max_new_tokens=10, temperature=1.5)
    fast = RolloutConfig(group_size=2, max_new_tokens=10, temperature=1.5,
                         engine_options={"cache": "static", "compile": True, "prompt_multiple": 8})
    for prompts in (["1+2\n", "12+34\n"], ["3+45\n", "6+7\n"]):
        plain, compiled = _samples(model, tokenizer, cfg, prompts), _samples(model, tokenizer, fast, prompts)
        assert torch.equal(plain.response_ids, compiled.response_ids)
        assert plain.texts == compiled.texts
    assert hasattr(model, "_compiled_call")  # transformers really took the compiled decode path


def test_hf_options_are_validated():
    with pytest.raises(ConfigError, match="compile: true needs cache: static"):
        RolloutConfig(engine_options={"compile": True})
    with pytest.raises(ConfigError, match="cache='paged' is not valid"):
        RolloutConfig(engine_options={"cache": "paged"})
    with pytest.raises(ConfigError, match="prompt_multiple=0 is out of range"):
        RolloutConfig(engine_options={"prompt_multiple": 0})


@pytest.mark.parametrize("options", [{}, {"cache": "static"}])
def test_sampler_logprobs_match_the_forward_pass(model, tokenizer, options):
    """old_logprobs: sampler: the recorder's log-probs equal the separate no-grad forward within 1e-5 (temperature
    scaled, before top-p), over generation chunks and rows of different lengths."""
    model.lm_head.register_forward_hook(lambda m, a, logits: logits + torch.where(
        torch.arange(logits.shape[-1]) == tokenizer.eos_token_id, 2.5, 0.0))  # rows end at different lengths
    cfg = RolloutConfig(group_size=3, max_new_tokens=14, temperature=0.7, top_p=0.9, generation_batch_size=4,
                        engine_options=options)
    prompts = ["1+2\n", "12+34\n"]
    engine = build_rollout_engine(cfg)
    torch.manual_seed(11)
    scored = engine.generate(model, tokenizer, prompts, cfg)
    torch.manual_seed(11)
    recorded = engine.generate(model, tokenizer, prompts, cfg, from_sampler=True)
    assert torch.equal(scored.response_ids, recorded.response_ids)
    lengths = recorded.response_lengths
    assert lengths.min() < lengths.max()  # some rows stopped early: their padding must be masked
    assert (recorded.old_logprobs[recorded.response_mask == 0] == 0).all()
    torch.testing.assert_close(recorded.old_logprobs, scored.old_logprobs, atol=1e-5, rtol=0)


def test_sampler_logprobs_refuse_min_new_tokens(model, tokenizer):
    cfg = RolloutConfig(group_size=2, max_new_tokens=6, min_new_tokens=2)
    with pytest.raises(ValueError, match="min_new_tokens = 0"):
        build_rollout_engine(cfg).generate(model, tokenizer, ["1+2\n"], cfg, from_sampler=True)


def test_top_k_and_repetition_penalty_reach_the_sampler(model, tokenizer):
    """R-TAP's sampling settings (top-k 50, repetition penalty 1.05): passed to generate, and they act. top-k = 1
    at temperature 1 is greedy decoding; a repetition penalty changes what greedy decoding writes."""
    gen = generation_config(tokenizer, RolloutConfig(top_p=0.95, top_k=50, repetition_penalty=1.05))
    assert (gen.top_p, gen.top_k, gen.repetition_penalty) == (0.95, 50, 1.05)
    assert generation_config(tokenizer, RolloutConfig()).top_k == 0
    prompts = ["1+2\n", "45+67\n"]
    greedy_cfg = RolloutConfig(group_size=1, max_new_tokens=12, temperature=0.0)
    greedy = build_rollout_engine(greedy_cfg).generate(model, tokenizer, prompts, greedy_cfg, with_logprobs=False)
    top1 = RolloutConfig(group_size=1, max_new_tokens=12, temperature=1.0, top_k=1)
    torch.manual_seed(0)
    sampled = build_rollout_engine(top1).generate(model, tokenizer, prompts, top1, with_logprobs=False)
    assert torch.equal(sampled.response_ids, greedy.response_ids)
    penalised = RolloutConfig(group_size=1, max_new_tokens=12, temperature=0.0, repetition_penalty=50.0)
    other = build_rollout_engine(penalised).generate(model, tokenizer, prompts, penalised, with_logprobs=False)
    assert not torch.equal(other.response_ids, greedy.response_ids)


def test_sampling_settings_are_validated():
    with pytest.raises(ConfigError, match="top_k"):
        RolloutConfig(top_k=-1)
    with pytest.raises(ConfigError, match="repetition_penalty"):
        RolloutConfig(repetition_penalty=0.0)
