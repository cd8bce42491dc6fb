"""Frozen-model scoring beside the rollout: rows reported at eos, scored in a worker, equal to whole-batch scoring."""

from __future__ import annotations

import copy

import pytest
import torch

from rl_distill.engine.frozen_stream import FrozenStream
from rl_distill.engine.scoring import FrozenModel, ScoreSettings, score_frozen
from rl_distill.rollout.base import RolloutConfig, build_rollout_engine

# Hot sampling from a random tiny model: about half of the rows sample eos within 24 tokens, the rest are cut.
HOT = RolloutConfig(group_size=4, temperature=3.0, max_new_tokens=24, generation_batch_size=6)
PROMPTS = ["1+2\n", "3+4\n", "5+6\n", "7+8\n"]


class _Recorder:
    def __init__(self):
        self.prompt_shape, self.rows = None, {}

    def prompts(self, prompt_ids, prompt_mask):
        self.prompt_shape = tuple(prompt_ids.shape)

    def finished(self, row, response_ids):
        assert row not in self.rows
        self.rows[row] = list(response_ids)


def test_hf_engine_reports_exactly_the_rows_that_sampled_eos(student, tokenizer):
    torch.manual_seed(0)
    recorder = _Recorder()
    batch = build_rollout_engine(HOT).generate(student, tokenizer, PROMPTS, HOT, listener=recorder)
    eos = tokenizer.eos_token_id
    ended = {i for i in range(batch.response_ids.shape[0]) if (batch.response_ids[i] == eos).any()}
    assert recorder.prompt_shape == tuple(batch.prompt_ids.shape)
    assert set(recorder.rows) == ended and 0 < len(ended) < batch.response_ids.shape[0]
    for row, ids in recorder.rows.items():  # offsets of the generation_batch_size chunks are applied
        assert ids[-1] == eos and ids == batch.response_ids[row, : len(ids)].tolist()
        assert len(ids) == int(batch.response_lengths[row])


def test_listener_does_not_change_what_is_sampled(student, tokenizer):
    torch.manual_seed(1)
    plain = build_rollout_engine(HOT).generate(student, tokenizer, PROMPTS, HOT)
    torch.manual_seed(1)
    heard = build_rollout_engine(HOT).generate(student, tokenizer, PROMPTS, HOT, listener=_Recorder())
    assert torch.equal(plain.response_ids, heard.response_ids)
    assert torch.equal(plain.old_logprobs, heard.old_logprobs)


@pytest.mark.parametrize("bucket_rows", [1, 3, 64])  # 64: nothing streams, the worker scores every row at the end
def test_streamed_scores_equal_whole_batch_scores(student, teacher, tokenizer, bucket_rows):
    settings = ScoreSettings(temperature=HOT.temperature, vocab_size=len(tokenizer))
    reference = copy.deepcopy(student)
    models = [FrozenModel("teacher", teacher, with_logits=True), FrozenModel("reference", reference)]
    torch.manual_seed(0)
    with FrozenStream(models, settings, tokenizer.pad_token_id, bucket_rows=bucket_rows) as stream:
        batch = build_rollout_engine(HOT).generate(student, tokenizer, PROMPTS, HOT, with_logprobs=False,
                                                   listener=stream)
        stream.finish(batch)
        scores = stream.result()
    assert (stream.streamed_rows > 0) == (bucket_rows < 64)
    assert (batch.old_logprobs == 0).all()  # asked for without old log-probs
    t_lp, t_logits = score_frozen(teacher, batch, temperature=HOT.temperature, with_logits=True,
                                  vocab_size=len(tokenizer))
    r_lp, _ = score_frozen(reference, batch, temperature=HOT.temperature)
    torch.testing.assert_close(scores["teacher"][0], t_lp, atol=1e-5, rtol=1e-5)
    real = batch.response_mask.bool()  # logits past a response's end are whatever its forward saw: never used
    torch.testing.assert_close(scores["teacher"][1][real], t_logits[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(scores["reference"][0], r_lp, atol=1e-5, rtol=1e-5)
    assert scores["reference"][1] is None and (scores["teacher"][0][batch.response_mask == 0] == 0).all()
    assert stream.busy_s > 0 and teacher.training  # fixtures build models in train mode; the mode is restored


def test_a_misreported_row_is_an_error(student, teacher, tokenizer):
    torch.manual_seed(0)
    batch = build_rollout_engine(HOT).generate(student, tokenizer, PROMPTS, HOT, with_logprobs=False)
    stream = FrozenStream([FrozenModel("teacher", teacher)], ScoreSettings(), tokenizer.pad_token_id, bucket_rows=1)
    stream.prompts(batch.prompt_ids, batch.prompt_mask)
    stream.finished(2, batch.response_ids[3, :5].tolist())  # row 3's tokens reported as row 2's
    stream.finish(batch)
    with pytest.raises(RuntimeError, match="row 2: the rollout reported a finished response"):
        stream.result()


class _Broken(torch.nn.Module):
    def forward(self, **kwargs):
        raise ValueError("teacher exploded")


def test_worker_errors_reach_the_caller_and_close_stops_the_worker(student, tokenizer):
    torch.manual_seed(0)
    batch = build_rollout_engine(HOT).generate(student, tokenizer, PROMPTS, HOT, with_logprobs=False)
    stream = FrozenStream([FrozenModel("teacher", _Broken())], ScoreSettings(), tokenizer.pad_token_id)
    stream.finish(batch)
    with pytest.raises(RuntimeError, match="worker thread: teacher exploded"):
        stream.result()
    with pytest.raises(KeyError), FrozenStream([FrozenModel("teacher", _Broken())], ScoreSettings(), 0) as idle:
        raise KeyError("the rollout failed")
    assert not idle._worker.is_alive()
