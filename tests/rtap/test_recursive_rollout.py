"""Recursive rollouts end to end on scripted cycles (R-TAP, arXiv 2603.02099, Sec. 3): stops, M, truncation, the
batch layout and its old log-probs; plus one real sampling pass through a tiny model."""

from __future__ import annotations

import torch

from rl_distill.models.scoring import sequence_logprobs
from rl_distill.rollout.base import RolloutConfig
from rl_distill.rtap.trajectory import recursive_rollout

from .conftest import ANSWERS, RIGHT, SCRIPT, WRONG


def test_scripted_trajectories(scripted, model, tokenizer, task) -> None:
    prompts = list(SCRIPT)
    cfg = RolloutConfig(group_size=1, max_new_tokens=40)
    r = recursive_rollout(model, tokenizer, task, prompts, [ANSWERS[p] for p in prompts], cfg, max_cycles=3)
    assert r.m.tolist() == [1, 2, 3, 1, 2]
    assert r.num_generated.tolist() == [1, 2, 3, 1, 2]  # stop_at_correct: nothing generated after a right cycle
    assert r.answer_correct.tolist() == [True, True, False, False, False]
    assert r.cycle_stops[3] == ["answer"]  # the eos "cycle" is not a cycle
    eos = tokenizer.eos_token_id
    n_wrong = len(tokenizer.encode(WRONG, add_special_tokens=False))
    n_right = len(tokenizer.encode(RIGHT.format(4), add_special_tokens=False))
    n_trunc = len(tokenizer.encode("<think>2+2", add_special_tokens=False))
    # kept lengths: closed cycle M -> eos after it (end_with_eos); a cycle cut by the token cap gets none.
    expected = [n_right + 1, n_wrong + n_right + 1, 3 * n_wrong + 1, n_wrong + 1, n_wrong + n_trunc]
    assert r.batch.response_mask.sum(dim=1).tolist() == expected
    assert r.cycle_spans[1] == [(0, n_wrong), (n_wrong, n_wrong + n_right)]
    ends_eos = [bool((row[m.bool()][-1:] == eos).all()) for row, m in zip(r.batch.response_ids, r.batch.response_mask)]
    assert ends_eos == [True, True, True, True, False]
    assert r.batch.texts[1] == WRONG + RIGHT.format(4)
    assert r.cycle_well_formed[4] == [True, False]
    # Old log-probs are the shared scorer's on the kept tokens, zero elsewhere.
    with torch.no_grad():
        lp = sequence_logprobs(model, r.batch.input_ids, r.batch.attention_mask, r.batch.response_start)
    assert torch.allclose(r.batch.old_logprobs, lp * r.batch.response_mask, atol=1e-5)
    assert r.batch.prompt_index.tolist() == [0, 1, 2, 3, 4]


def test_without_stop_at_correct_later_cycles_are_cut(scripted, model, tokenizer, task) -> None:
    script_prompt = "1+2\n"
    SCRIPT_LONG = {script_prompt: [(RIGHT.format(3), "answer"), (WRONG, "answer")]}
    original = dict(SCRIPT)
    SCRIPT.update(SCRIPT_LONG)
    try:
        cfg = RolloutConfig(group_size=1, max_new_tokens=40)
        r = recursive_rollout(model, tokenizer, task, [script_prompt], ["3"], cfg, max_cycles=2,
                              stop_at_correct=False, end_with_eos=False)
    finally:
        SCRIPT.clear()
        SCRIPT.update(original)
    assert r.num_generated.tolist() == [2] and r.m.tolist() == [1]
    assert r.cycle_texts[0] == [RIGHT.format(3), WRONG]  # both generated (C_phi trains on both) ...
    assert r.batch.texts == [RIGHT.format(3)]  # ... only cycle 1 is kept, and no eos was invented
    assert int(r.batch.response_mask.sum()) == len(tokenizer.encode(RIGHT.format(3), add_special_tokens=False))


def test_real_sampling_invariants(model, tokenizer, task) -> None:
    torch.manual_seed(0)
    examples = task.generate(2, 1, seed=0)
    cfg = RolloutConfig(group_size=3, max_new_tokens=10)
    r = recursive_rollout(model, tokenizer, task, [e.prompt for e in examples], [e.answer for e in examples], cfg,
                          max_cycles=2)
    n = 6
    assert r.batch.response_ids.shape[0] == n and len(r.prompts) == n
    assert r.batch.prompt_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert ((r.m >= 1) & (r.m <= r.num_generated) & (r.num_generated <= 2)).all()
    for spans, length in zip(r.cycle_spans, r.batch.response_mask.sum(dim=1).tolist()):
        assert spans[0][0] == 0 and spans[-1][1] in (length, length - 1)  # optional trailing eos
