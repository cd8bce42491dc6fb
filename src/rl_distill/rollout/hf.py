"""The ``hf`` rollout engine: batched ``model.generate`` with a KV cache and left padding (the default; CPU-friendly).

One job: sample response ids with the trainer's own model, telling a listener of each row as soon as it samples eos
(through ``generate``'s streamer hook, which receives every decoding step's tokens). The sampling distribution is
set explicitly (temperature, top-p, top-k off, no repetition penalty), so a pretrained model's
``generation_config`` defaults (e.g. Qwen's ``top_k=20``) cannot silently change what is sampled and make the
old-policy log-probs disagree with the sampler.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from transformers import GenerationConfig
from transformers.generation.streamers import BaseStreamer

from rl_distill.rollout.base import ROLLOUT_ENGINES, FinishedRows, RolloutConfig, RolloutEngine, pad_token_id


def generation_config(tokenizer: Any, cfg: RolloutConfig) -> GenerationConfig:
    """An explicit :class:`GenerationConfig` for ``cfg`` (greedy when ``temperature == 0``)."""
    common = {
        "max_new_tokens": cfg.max_new_tokens,
        "min_new_tokens": cfg.min_new_tokens or None,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": pad_token_id(tokenizer),
        "use_cache": True,
        "repetition_penalty": 1.0,
    }
    if cfg.greedy:
        return GenerationConfig(do_sample=False, **common)
    return GenerationConfig(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0, **common)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module  # DDP wrapper: generate lives on the inner model
    return model


class _RowsAtEos(BaseStreamer):
    """A ``generate`` streamer that reports each row (``offset`` + index) to ``listener`` when it samples eos.

    ``generate`` calls :meth:`put` once with the [n, P] prompt ids, then once per decoding step with the [n] new
    tokens (pad for rows already finished).
    """

    def __init__(self, listener: FinishedRows, offset: int, rows: int, eos_token_id: int) -> None:
        self.listener, self.offset, self.eos = listener, offset, eos_token_id
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.open = set(range(rows))

    def put(self, value: Tensor) -> None:
        if value.dim() != 1:
            return  # the prompt
        step = value.tolist()
        for i in sorted(self.open):
            self.tokens[i].append(step[i])
            if step[i] == self.eos:
                self.open.discard(i)
                self.listener.finished(self.offset + i, self.tokens[i])

    def end(self) -> None:
        """Nothing to flush: rows that never sampled eos are not reported."""


@ROLLOUT_ENGINES.register("hf")
class HFRolloutEngine(RolloutEngine):
    """Samples with ``transformers`` ``generate``; rows are split into ``cfg.generation_batch_size`` chunks."""

    def sample(self, model: torch.nn.Module, tokenizer: Any, prompt_ids: Tensor, prompt_mask: Tensor,
               cfg: RolloutConfig, listener: FinishedRows | None = None) -> Tensor:
        inner = _unwrap(model)
        gen_cfg = generation_config(tokenizer, cfg)
        step = cfg.generation_batch_size or prompt_ids.shape[0]
        width = prompt_ids.shape[1]
        was_training = inner.training
        inner.eval()
        parts = []
        try:
            with torch.no_grad():
                for lo in range(0, prompt_ids.shape[0], step):
                    rows = min(step, prompt_ids.shape[0] - lo)
                    streamer = (None if listener is None
                                else _RowsAtEos(listener, lo, rows, gen_cfg.eos_token_id))
                    out = inner.generate(input_ids=prompt_ids[lo:lo + step], attention_mask=prompt_mask[lo:lo + step],
                                         generation_config=gen_cfg, streamer=streamer)
                    parts.append(out[:, width:])
        finally:
            inner.train(was_training)
        longest = max(p.shape[1] for p in parts)
        return torch.cat([torch.nn.functional.pad(p, (0, longest - p.shape[1]), value=gen_cfg.pad_token_id)
                          for p in parts], dim=0)
