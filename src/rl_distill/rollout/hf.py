"""The ``hf`` rollout engine: batched ``model.generate`` with a KV cache and left padding (the default; CPU-friendly).

One job: sample response ids with the trainer's own model, telling a listener of each row as soon as it samples eos
(through ``generate``'s streamer hook, which receives every decoding step's tokens). The sampling distribution is
set explicitly (temperature, top-p, top-k off, no repetition penalty), so a pretrained model's
``generation_config`` defaults (e.g. Qwen's ``top_k=20``) cannot silently change what is sampled and make the
old-policy log-probs disagree with the sampler.

Options (``rollout.engine_options`` with ``engine: hf``, :class:`HFOptions`), measured with ``bench/vs_trl.py``:

- ``cache: static`` preallocates the KV cache for the whole response (transformers' ``StaticCache``) instead of
  growing it by concatenation every token. Alone it does not pay on CPU (measured: about level); it is what makes
  the decode step compilable.
- ``compile: true`` (needs ``cache: static``) runs every decoding step through ``torch.compile`` (transformers'
  auto-compiled decode, gpt-fast style: fixed shapes, so one graph serves every token). The first call of each
  shape compiles (about 30 s on 2 CPU cores for the bench model); later calls reuse it. A new shape is a new graph:
  ``prompt_multiple`` left-pads the prompts to a multiple of that many tokens, so varying prompt lengths share a
  few shapes (padding is masked: the samples do not change).
- Off by default: a short run with varying batch shapes spends more on compiling than it saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList
from transformers.generation.configuration_utils import CompileConfig
from transformers.generation.streamers import BaseStreamer

from rl_distill.rollout.base import (
    ROLLOUT_ENGINES,
    FinishedRows,
    NonFiniteLogitsError,
    RolloutConfig,
    RolloutEngine,
    pad_token_id,
)
from rl_distill.typed_config import ConfigError, check_choice, check_range

CACHES = ("dynamic", "static")


@dataclass(frozen=True)
class HFOptions:
    """hf engine settings (``rollout.engine_options`` when ``rollout.engine: hf``; module docstring)."""

    cache: str = "dynamic"
    compile: bool = False
    prompt_multiple: int = 1

    def __post_init__(self) -> None:
        check_choice("cache", self.cache, CACHES)
        check_range("prompt_multiple", self.prompt_multiple, 1)
        if self.compile and self.cache != "static":
            raise ConfigError("compile: true needs cache: static (a growing cache changes shape every token); set "
                              "rollout.engine_options: {cache: static, compile: true}.")


def generation_config(tokenizer: Any, cfg: RolloutConfig, options: HFOptions | None = None) -> GenerationConfig:
    """An explicit :class:`GenerationConfig` for ``cfg`` (greedy when ``temperature == 0``) and the engine's
    cache/compile ``options``."""
    options = options or HFOptions()
    common: dict[str, Any] = {
        "max_new_tokens": cfg.max_new_tokens,
        "min_new_tokens": cfg.min_new_tokens or None,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": pad_token_id(tokenizer),
        "use_cache": True,
        "repetition_penalty": cfg.repetition_penalty,
    }
    if options.cache == "static":
        common["cache_implementation"] = "static"
    if options.compile:
        compile_config = CompileConfig(fullgraph=True, dynamic=False)
        compile_config._compile_all_devices = True  # CompileConfig's own flag: auto-compile off CUDA too
        common["compile_config"] = compile_config
    else:
        common["disable_compile"] = True  # a static cache alone must not turn on transformers' CUDA auto-compile
    if cfg.greedy:
        return GenerationConfig(do_sample=False, **common)
    return GenerationConfig(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k, **common)


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


class SampledLogprobs(LogitsProcessor):
    """Records log pi(token) of each sampled token while ``generate`` samples: O(rows) memory per token.

    Semantics (those of :func:`~rl_distill.rollout.base.old_policy_logprobs`): ``log_softmax(logits / T)`` of the
    model's raw logits at the sampling temperature T, before top-p; so ``min_new_tokens`` must be 0 (its eos mask
    comes earlier in ``generate``'s processor list). ``generate`` calls a processor once per decoding step with the
    ids so far; the token sampled from step t's scores is the last id at step t + 1, so each call keeps one step's
    [rows, V] log-softmax and gathers the previous one; :meth:`logprobs` gathers the last step from the output.
    """

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature or 1.0
        self._last: Tensor | None = None
        self._taken: list[Tensor] = []

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        if self._last is not None:
            self._taken.append(self._last.gather(1, input_ids[:, -1:]))
        self._last = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def logprobs(self, response_ids: Tensor) -> Tensor:
        """[rows, T'] log-probs of ``response_ids`` (the [rows, T'] tokens ``generate`` returned after the prompt)."""
        taken = list(self._taken)
        if self._last is not None and len(taken) < response_ids.shape[1]:
            taken.append(self._last.gather(1, response_ids[:, len(taken):len(taken) + 1]))
        return torch.cat(taken, dim=1)[:, : response_ids.shape[1]]  # generate samples >= 1 token: never empty


@ROLLOUT_ENGINES.register("hf")
class HFRolloutEngine(RolloutEngine):
    """Samples with ``transformers`` ``generate``; rows are split into ``cfg.generation_batch_size`` chunks."""

    Options = HFOptions
    records_logprobs = True

    def sample(self, model: torch.nn.Module, tokenizer: Any, prompt_ids: Tensor, prompt_mask: Tensor,
               cfg: RolloutConfig, listener: FinishedRows | None = None) -> Tensor:
        return self._sample(model, tokenizer, prompt_ids, prompt_mask, cfg, listener, record=False)[0]

    def sample_recording(self, model: torch.nn.Module, tokenizer: Any, prompt_ids: Tensor, prompt_mask: Tensor,
                         cfg: RolloutConfig, listener: FinishedRows | None = None) -> tuple[Tensor, Tensor]:
        """``(response ids [N, T'], their sampling log-probs [N, T'] fp32)``: :class:`SampledLogprobs`."""
        ids, logprobs = self._sample(model, tokenizer, prompt_ids, prompt_mask, cfg, listener, record=True)
        assert logprobs is not None
        return ids, logprobs

    def _sample(self, model: torch.nn.Module, tokenizer: Any, prompt_ids: Tensor, prompt_mask: Tensor,
                cfg: RolloutConfig, listener: FinishedRows | None, record: bool) -> tuple[Tensor, Tensor | None]:
        if record and cfg.min_new_tokens:
            raise ValueError("sampler log-probs need rollout.min_new_tokens = 0 (its eos mask is applied before "
                             "the recorder sees the logits); use old_logprobs: forward or auto")
        inner = _unwrap(model)
        opts: HFOptions = self.options
        gen_cfg = generation_config(tokenizer, cfg, opts)
        step = cfg.generation_batch_size or prompt_ids.shape[0]
        extra = -prompt_ids.shape[1] % opts.prompt_multiple  # left pad to a multiple: fewer compiled shapes
        if extra:
            prompt_ids = torch.nn.functional.pad(prompt_ids, (extra, 0), value=gen_cfg.pad_token_id)
            prompt_mask = torch.nn.functional.pad(prompt_mask, (extra, 0), value=0)
        width = prompt_ids.shape[1]
        was_training = inner.training
        inner.eval()
        parts, recorded = [], []
        try:
            with torch.no_grad():
                for lo in range(0, prompt_ids.shape[0], step):
                    rows = min(step, prompt_ids.shape[0] - lo)
                    streamer = (None if listener is None
                                else _RowsAtEos(listener, lo, rows, gen_cfg.eos_token_id))
                    recorder = SampledLogprobs(cfg.temperature) if record else None
                    try:
                        out = inner.generate(input_ids=prompt_ids[lo:lo + step],
                                             attention_mask=prompt_mask[lo:lo + step], generation_config=gen_cfg,
                                             streamer=streamer,
                                             logits_processor=LogitsProcessorList([recorder] if recorder else []))
                    except RuntimeError as exc:  # torch.multinomial's check on NaN / inf probabilities
                        if "probability tensor contains" not in str(exc):
                            raise
                        raise NonFiniteLogitsError(f"sampling: the policy's next-token probabilities hold NaN or "
                                                   f"inf ({exc})") from exc
                    parts.append(out[:, width:])
                    if recorder is not None:
                        recorded.append(recorder.logprobs(parts[-1]))
        finally:
            inner.train(was_training)
        longest = max(p.shape[1] for p in parts)

        def padded(chunks: list[Tensor], value: float) -> Tensor:
            return torch.cat([torch.nn.functional.pad(p, (0, longest - p.shape[1]), value=value) for p in chunks])

        return padded(parts, gen_cfg.pad_token_id), (padded(recorded, 0.0) if record else None)
