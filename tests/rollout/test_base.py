"""Rollout plumbing shared by every engine: config validation, response masks, decoding, engine registry."""

from __future__ import annotations

import pytest
import torch

from rl_distill.registry import UnknownNameError
from rl_distill.rollout.base import (
    ROLLOUT_ENGINES,
    RolloutConfig,
    build_rollout_engine,
    decode_responses,
    encode_prompts,
    pad_responses,
    response_mask_from_ids,
)
from rl_distill.rollout.hf import HFRolloutEngine
from rl_distill.typed_config import ConfigError, from_dict


def test_engines_registered():
    assert ROLLOUT_ENGINES.names() == ["hf", "vllm"]
    assert isinstance(build_rollout_engine(RolloutConfig()), HFRolloutEngine)


@pytest.mark.parametrize(("data", "error", "fragment"), [
    ({"engine": "vlm"}, UnknownNameError, "Did you mean 'vllm'"),
    ({"group_size": 0}, ConfigError, "group_size"),
    ({"top_p": 0.0}, ConfigError, "top_p"),
    ({"temperature": -1}, ConfigError, "temperature"),
    ({"max_new_token": 3}, ConfigError, "Did you mean 'max_new_tokens'"),
    ({"engine": "vllm", "engine_options": {"gpu_memory": 0.5}}, ConfigError, "gpu_memory_utilization"),
    ({"engine": "hf", "engine_options": {"x": 1}}, ConfigError, "unknown key 'x'"),
])
def test_bad_rollout_configs(data, error, fragment):
    with pytest.raises(error, match=fragment):
        from_dict(RolloutConfig, data, where="rollout")


def test_response_mask_includes_first_eos_only():
    eos = 2
    ids = torch.tensor([[5, 6, 2, 0, 0], [5, 2, 2, 7, 0], [5, 6, 7, 8, 9]])
    # Row 0 ends at its eos (3 tokens), row 1 at the first of two eos (2 tokens), row 2 never ends (truncated: 5).
    assert response_mask_from_ids(ids, eos).tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]


def test_encode_left_pads_with_bos_and_decode_keeps_tags(tokenizer):
    ids, mask = encode_prompts(tokenizer, ["1+2\n", "12+34\n"])
    assert ids.shape == (2, 7)  # bos + 6 chars for the longer prompt
    assert mask[0].tolist() == [0, 0, 1, 1, 1, 1, 1]
    assert ids[0, 2].item() == tokenizer.bos_token_id and ids[0, 0].item() == tokenizer.pad_token_id
    text = "<think>1+2=3</think><answer>3</answer>"
    body = tokenizer(text, add_special_tokens=False)["input_ids"]
    row = torch.tensor([body + [tokenizer.eos_token_id, tokenizer.pad_token_id]])
    assert decode_responses(tokenizer, row, response_mask_from_ids(row, tokenizer.eos_token_id)) == [text]


def test_pad_responses_by_hand():
    ids, mask = pad_responses([[5, 6, 7], [], [9]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 0], [9, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 0], [1, 0, 0]]
    ids, mask = pad_responses([[]], pad_id=2)  # at least one column
    assert ids.tolist() == [[2]] and mask.tolist() == [[0]] and ids.dtype == mask.dtype == torch.long
