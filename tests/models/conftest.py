"""Fixtures for the model factory / checkpoint / scoring tests: the real char tokenizer and a tiny Llama config."""

from __future__ import annotations

import pytest
import torch

from rl_distill.models.factory import ModelConfig
from rl_distill.models.tokenizer import alphabet_for, build_tokenizer
from rl_distill.tasks import get_task


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer(alphabet_for([get_task("arithmetic")]))


@pytest.fixture()
def tiny_cfg() -> ModelConfig:
    return ModelConfig(family="llama", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=64, max_position_embeddings=128, seed=3)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models are overhead-bound: one intra-op thread avoids OpenMP spin-waits on the shared 2-core machine
    (measured: a 40x32 @ 32x64 linear takes 25 us on 1 thread and ~5 ms on 2 threads under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
