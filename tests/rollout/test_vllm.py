"""The vllm engine. Without vllm it still imports and registers (and fails clearly); the real checks need a GPU."""

from __future__ import annotations

import pytest
import torch

from rl_distill.models.factory import ModelConfig, build_model
from rl_distill.rollout.base import RolloutConfig, build_rollout_engine
from rl_distill.rollout.vllm import VLLMOptions, VLLMRolloutEngine


def test_options_validate_and_engine_builds_without_vllm():
    cfg = RolloutConfig(engine="vllm", engine_options={"gpu_memory_utilization": 0.25, "enforce_eager": True})
    engine = build_rollout_engine(cfg)
    assert isinstance(engine, VLLMRolloutEngine)
    assert engine.options == VLLMOptions(gpu_memory_utilization=0.25, enforce_eager=True)
    engine.sync_weights(torch.nn.Linear(2, 2))  # no engine yet: a no-op


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error path")
def test_cpu_fails_with_a_clear_message(model, tokenizer):
    cfg = RolloutConfig(engine="vllm", group_size=1, max_new_tokens=2)
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        build_rollout_engine(cfg).generate(model, tokenizer, ["1+1\n"], cfg)


@pytest.mark.gpu
def test_vllm_greedy_matches_hf_and_tracks_weight_updates(tokenizer):
    pytest.importorskip("vllm")
    # head_dim 32: inside every vLLM attention backend's supported sizes.
    model = build_model(ModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                    max_position_embeddings=128, seed=0), tokenizer).cuda()
    options = {"gpu_memory_utilization": 0.2, "enforce_eager": True, "dtype": "float32", "max_model_len": 128}
    vllm_cfg = RolloutConfig(engine="vllm", group_size=2, temperature=0.0, max_new_tokens=12,
                             engine_options=options)
    hf_cfg = RolloutConfig(engine="hf", group_size=2, temperature=0.0, max_new_tokens=12)
    vllm_engine, hf_engine = build_rollout_engine(vllm_cfg), build_rollout_engine(hf_cfg)
    prompts = ["1+2\n", "34+56\n", "7*8\n"]
    try:
        for _ in range(2):  # second round after a weight change: the sampler must follow the trainer
            got = vllm_engine.generate(model, tokenizer, prompts, vllm_cfg)
            want = hf_engine.generate(model, tokenizer, prompts, hf_cfg)
            assert got.prompt_index.tolist() == [0, 0, 1, 1, 2, 2]
            assert got.response_ids.shape == want.response_ids.shape
            assert torch.equal(got.response_ids, want.response_ids)
            torch.testing.assert_close(got.old_logprobs, want.old_logprobs)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p) * 0.5)
        sampled_cfg = RolloutConfig(engine="vllm", group_size=4, temperature=1.0, max_new_tokens=12,
                                    engine_options=options)
        batch = vllm_engine.generate(model, tokenizer, prompts, sampled_cfg)
        assert batch.response_ids.shape[0] == 12
        assert (batch.old_logprobs[batch.response_mask == 1] < 0).all()
    finally:
        vllm_engine.close()
