"""Recursive rollouts end to end on scripted cycles (R-TAP, arXiv 2603.02099, Sec. 3): stops, M, truncation, the
batch layout and its old log-probs; plus one real sampling pass through a tiny model."""

from __future__ import annotations

import pytest
import torch

from rl_distill.models.scoring import sequence_logprobs
from rl_distill.rollout.base import RolloutConfig
from rl_distill.rtap import trajectory
from rl_distill.rtap.trajectory import recursive_rollout

from .conftest import ANSWERS, RIGHT, SCRIPT, WRONG


def test_scripted_trajectories(scripted, model, tokenizer, task) -> None:
    prompts = list(SCRIPT)
    cfg = RolloutConfig(group_size=1, max_new_tokens=40)
    r = recursive_rollout(model, tokenizer, task, prompts, [ANSWERS[p] for p in prompts], cfg, max_cycles=3,
                          force_cycles=False)  # the script's "4+4" stops by itself after cycle 1
    assert r.m.tolist() == [1, 2, 3, 1, 2]
    assert r.num_generated.tolist() == [1, 2, 3, 1, 2]  # stop_at_correct: nothing generated after a right cycle
    assert r.answer_correct.tolist() == [True, True, False, False, False]
    assert r.cycle_stops[3] == ["answer"]  # the eos "cycle" is not a cycle
    eos = tokenizer.eos_token_id
    n_wrong = len(tokenizer.encode(WRONG, add_special_tokens=False))
    n_right = len(tokenizer.encode(RIGHT.format(4), add_special_tokens=False))
    n_trunc = len(tokenizer.encode("<think>2+2", add_special_tokens=False))
    # kept lengths: the script samples eos after every last cycle it closes (rows 0-2 through the one-token peek
    # after a stop the rollout made, row 3 by itself); a cycle cut by the token cap gets none.
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
    # The peek: one token sampled where the rollout stopped generating (M correct, or T = 3 cycles closed).
    assert sorted((p, t) for p, t, cap, _ in scripted if cap == 1) == [("1+2\n", 1), ("2+2\n", 2), ("3+3\n", 3)]
    assert not any(forced for *_, forced in scripted)
    # The sampler's log-probs follow each kept token: -(k+1)/100 for token k of its cycle, -0.5 for an eos.
    script_lp = [-(k + 1) / 100 for k in range(n_right)]
    assert r.sampled_logprobs[0, : n_right + 1].tolist() == pytest.approx(script_lp + [-0.5])
    assert r.sampled_logprobs[4].tolist() == pytest.approx(
        [-(k + 1) / 100 for k in range(n_wrong)] + [-(k + 1) / 100 for k in range(n_trunc)]
        + [0.0] * (r.sampled_logprobs.shape[1] - n_wrong - n_trunc))


def test_cycles_after_the_first_are_forced(scripted, model, tokenizer, task) -> None:
    """force_cycles (the paper's T cycles): every cycle after the first is generated with its start forced (eos and
    </answer> suppressed at its first token); the first cycle and the eos peek are free."""
    prompts = ["2+2\n", "3+3\n"]
    recursive_rollout(model, tokenizer, task, prompts, [ANSWERS[p] for p in prompts],
                      RolloutConfig(group_size=1, max_new_tokens=40), max_cycles=3)
    cycles = sorted((p, t, forced) for p, t, cap, forced in scripted if cap == 40)
    assert cycles == [("2+2\n", 0, False), ("2+2\n", 1, True),
                      ("3+3\n", 0, False), ("3+3\n", 1, True), ("3+3\n", 2, True)]
    assert all(not forced for *_, cap, forced in scripted if cap == 1)


def test_a_peeked_token_that_is_not_eos_is_dropped(scripted, model, tokenizer, task) -> None:
    """After a correct cycle the policy would have gone on (the script's next cycle): nothing is appended, and the
    peeked token, the start of a cut cycle, is not kept."""
    original = dict(SCRIPT)
    SCRIPT["1+2\n"] = [(RIGHT.format(3), "answer"), (WRONG, "answer")]
    try:
        r = recursive_rollout(model, tokenizer, task, ["1+2\n"], ["3"], RolloutConfig(group_size=1, max_new_tokens=40),
                              max_cycles=3)
    finally:
        SCRIPT.clear()
        SCRIPT.update(original)
    assert ("1+2\n", 1, 1, False) in scripted  # the peek was sampled, free to stop
    assert r.num_generated.tolist() == [1] and r.batch.texts == [RIGHT.format(3)]
    assert int(r.batch.response_mask.sum()) == len(tokenizer.encode(RIGHT.format(3), add_special_tokens=False))
    assert tokenizer.eos_token_id not in r.batch.response_ids[r.batch.response_mask.bool()].tolist()


def test_without_stop_at_correct_later_cycles_are_cut(scripted, model, tokenizer, task) -> None:
    script_prompt = "1+2\n"
    SCRIPT_LONG = {script_prompt: [(RIGHT.format(3), "answer"), (WRONG, "answer")]}
    original = dict(SCRIPT)
    SCRIPT.update(SCRIPT_LONG)
    try:
        cfg = RolloutConfig(group_size=1, max_new_tokens=40)
        r = recursive_rollout(model, tokenizer, task, [script_prompt], ["3"], cfg, max_cycles=2,
                              stop_at_correct=False, sample_eos=False)
    finally:
        SCRIPT.clear()
        SCRIPT.update(original)
    assert r.num_generated.tolist() == [2] and r.m.tolist() == [1]
    assert r.cycle_texts[0] == [RIGHT.format(3), WRONG]  # both generated (C_phi trains on both) ...
    assert r.batch.texts == [RIGHT.format(3)]  # ... only cycle 1 is kept, and no eos was invented
    assert all(cap != 1 for _, _, cap, _ in scripted)  # sample_eos off: no peek
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


def test_every_trained_token_was_sampled_with_its_sampling_logprob(monkeypatch, model, tokenizer, task) -> None:
    """Issue 19, fix 1: each loss-bearing token of a real recursive rollout is a token the sampler produced for that
    row (cycles 1..M in order, then an eos only where one was sampled), and its old log-prob (the forward pass)
    equals the sampler's within 1e-4; ``from_sampler`` uses the sampler's directly."""
    sampled: dict[tuple[int, ...], list] = {}
    real = trajectory.generate_cycle

    def spy(model_, tok, contexts, cfg_, batch_size=None, forced=False):
        out = real(model_, tok, contexts, cfg_, batch_size, forced=forced)
        for ctx, cycle in zip(contexts, out):
            sampled.setdefault(tuple(ctx), []).append(cycle)
        return out

    monkeypatch.setattr(trajectory, "generate_cycle", spy)
    torch.manual_seed(3)
    examples = task.generate(3, 1, seed=0)
    cfg = RolloutConfig(group_size=8, max_new_tokens=12)
    prompts, answers = [e.prompt for e in examples], [e.answer for e in examples]
    r = recursive_rollout(model, tokenizer, task, prompts, answers, cfg, max_cycles=2)
    eos, kept_eos = tokenizer.eos_token_id, 0
    for i in range(r.batch.response_ids.shape[0]):
        ids = r.batch.response_ids[i][r.batch.response_mask[i].bool()].tolist()
        prompt = r.batch.prompt_ids[i][r.batch.prompt_mask[i].bool()].tolist()
        spans = r.cycle_spans[i]
        assert len(spans) == int(r.m[i]) and spans[-1][1] in (len(ids), len(ids) - 1)
        last = None
        for start, end in spans:  # each kept cycle is one the sampler wrote after exactly this context
            outs = sampled[tuple(prompt + ids[:start])]
            matches = [c for c in outs if c.ids == ids[start:end]]
            assert matches, (i, start)
            last = matches[0]
        if spans[-1][1] == len(ids) - 1:  # a trailing eos: sampled as cycle M's stop, or right after cycle M
            kept_eos += 1
            assert ids[-1] == eos
            after = sampled.get(tuple(prompt + ids[:-1]), [])
            assert last.stop == "eos" or any(c.stop == "eos" and not c.ids for c in after), i
        else:
            assert eos not in ids, i
    assert kept_eos > 0  # the eos path was exercised
    for i, spans in enumerate(r.cycle_spans):  # forced cycles never start with eos or </answer>
        ids = r.batch.response_ids[i].tolist()
        stop = tokenizer.convert_tokens_to_ids("</answer>")
        assert all(end > start and ids[start] not in (eos, stop) for start, end in spans[1:]), i
    assert any(len(spans) > 1 for spans in r.cycle_spans)  # some rows were forced into a second cycle
    mask = r.batch.response_mask.bool()
    assert torch.allclose(r.batch.old_logprobs[mask], r.sampled_logprobs[mask], atol=1e-4)
    assert (r.sampled_logprobs[mask] < 0).all() and (r.sampled_logprobs[~mask] == 0).all()

    torch.manual_seed(3)
    again = recursive_rollout(model, tokenizer, task, prompts, answers, cfg, max_cycles=2, from_sampler=True)
    assert torch.equal(again.batch.response_ids, r.batch.response_ids)
    assert torch.equal(again.batch.old_logprobs, r.sampled_logprobs)


def _tagless_tokenizer():
    """A char-level tokenizer where ``</answer>`` is nine tokens, as in a BPE vocabulary (SmolLM2: three)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set("<>/abcdefghijklmnopqrstuvwxyz0123456789+=\n"))  # a-f: StopStringCriteria probes them
    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", *chars])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>",
                                   eos_token="<eos>", padding_side="left")


def test_a_multi_token_answer_tag_ends_the_cycle_where_its_text_ends() -> None:
    tok = _tagless_tokenizer()
    assert len(tok.encode("</answer>", add_special_tokens=False)) == 9
    cycle = tok.encode("<think>1+2=3</think><answer>3</answer>", add_special_tokens=False)
    after = tok.encode("<think>", add_special_tokens=False)
    logprobs = [-(k + 1) / 100 for k in range(len(cycle) + len(after))]
    cut = trajectory._cut_cycle_at_text(tok, cycle + after, logprobs, tok.eos_token_id)
    assert (cut.ids, cut.stop, cut.logprobs) == (cycle, "answer", logprobs[:len(cycle)])
    # eos before any tag: an "eos" stop with the eos's own log-prob; no tag and no eos: the cap
    head = tok.encode("<think>1+", add_special_tokens=False)
    cut = trajectory._cut_cycle_at_text(tok, [*head, tok.eos_token_id, *after], logprobs, tok.eos_token_id)
    assert (cut.ids, cut.stop, cut.eos_logprob) == (head, "eos", logprobs[len(head)])
    cut = trajectory._cut_cycle_at_text(tok, head, logprobs[:len(head)], tok.eos_token_id)
    assert (cut.ids, cut.stop) == (head, "length")


def test_generate_cycle_stops_on_the_tag_string_with_a_multi_token_tag() -> None:
    from rl_distill.models.factory import ModelConfig, build_model

    tok = _tagless_tokenizer()
    model = build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, seed=3), tok)
    contexts = [tok.encode("1+2\n")] * 6
    torch.manual_seed(0)
    cfg = RolloutConfig(group_size=1, temperature=1.0, max_new_tokens=12)
    for cycle in trajectory.generate_cycle(model, tok, contexts, cfg, forced=True):
        text = tok.decode(cycle.ids)
        assert len(cycle.logprobs) == len(cycle.ids) and cycle.ids
        assert ("</answer>" in text) == (cycle.stop == "answer")
        assert cycle.stop != "answer" or text.endswith("</answer>")
        assert cycle.stop != "length" or len(cycle.ids) == 12
