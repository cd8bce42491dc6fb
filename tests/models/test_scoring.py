"""Response scoring: matches a plain full-sequence log-softmax, is invariant to left padding and micro-batching."""

from __future__ import annotations

import torch

from rl_distill.models.factory import build_model
from rl_distill.models.scoring import position_ids_from_mask, response_logits, sequence_logprobs


def test_position_ids_skip_left_padding():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


def _naive(model, ids, response_start):
    logits = model(input_ids=ids).logits[:, response_start - 1:-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[:, response_start:, None]).squeeze(-1)


def test_matches_naive_and_padding_invariant(tokenizer, tiny_cfg):
    model = build_model(tiny_cfg, tokenizer).eval()
    torch.manual_seed(0)
    short = torch.randint(8, len(tokenizer), (1, 6))  # 4 prompt + 2 response tokens, no padding
    expected = _naive(model, short, 4)  # [1, 2]
    pad = tokenizer.pad_token_id
    # The same row with 3 columns of left padding: response now starts at column 7.
    padded = torch.cat([torch.full((1, 3), pad), short], dim=1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 6, dtype=torch.long)], dim=1)
    with torch.no_grad():
        got = sequence_logprobs(model, padded, mask, 7)
        plain = sequence_logprobs(model, short, torch.ones_like(short), 4)
    torch.testing.assert_close(plain, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_micro_batches_and_temperature(tokenizer, tiny_cfg):
    model = build_model(tiny_cfg, tokenizer).eval()
    torch.manual_seed(1)
    ids = torch.randint(8, len(tokenizer), (5, 9))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        whole = sequence_logprobs(model, ids, mask, 4)
        split = sequence_logprobs(model, ids, mask, 4, micro_batch_size=2, chunk_size=3)
        hot = sequence_logprobs(model, ids, mask, 4, temperature=2.0)
        logits = response_logits(model, ids, mask, 4)  # [5, 5, V]
    torch.testing.assert_close(split, whole, atol=1e-5, rtol=1e-5)
    manual_hot = torch.log_softmax(logits / 2.0, -1).gather(-1, ids[:, 4:, None]).squeeze(-1)
    torch.testing.assert_close(hot, manual_hot, atol=1e-5, rtol=1e-5)
    assert whole.shape == (5, 5) and whole.dtype == torch.float32


def test_gradients_flow(tokenizer, tiny_cfg):
    model = build_model(tiny_cfg, tokenizer)
    ids = torch.randint(8, len(tokenizer), (2, 7))
    sequence_logprobs(model, ids, torch.ones_like(ids), 3).sum().backward()
    assert model.model.embed_tokens.weight.grad is not None


def test_length_buckets_give_the_same_values(tokenizer, tiny_cfg):
    from rl_distill.models.scoring import score_responses

    model = build_model(tiny_cfg, tokenizer).eval()
    torch.manual_seed(2)
    pad = tokenizer.pad_token_id
    ids = torch.randint(8, len(tokenizer), (5, 4 + 6))  # P = 4, T = 6
    attention = torch.ones_like(ids)
    attention[0, :2] = 0  # left padding on two rows
    attention[3, :1] = 0
    ids[attention == 0] = pad
    lengths = torch.tensor([6, 1, 3, 6, 2])
    response_mask = (torch.arange(6)[None, :] < lengths[:, None]).long()
    with torch.no_grad():
        full = sequence_logprobs(model, ids, attention, 4) * response_mask
        bucketed, logits = score_responses(model, ids, attention, 4, response_mask, rows_per_forward=2,
                                           with_logits=True)
        via_mask = sequence_logprobs(model, ids, attention, 4, response_mask=response_mask)
    torch.testing.assert_close(bucketed, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(via_mask, full, atol=1e-5, rtol=1e-5)
    reference = response_logits(model, ids, attention, 4)
    torch.testing.assert_close(logits * response_mask[..., None], reference * response_mask[..., None],
                               atol=1e-5, rtol=1e-5)
