"""One SFT step: the same update loop with the ``sft`` loss on fixed traces (``example.trace`` + eos, or
``example.trace_clean`` with ``sft.target: trace_clean``) as targets.

One job: lay reference completions out exactly like rollouts (left-padded prompt, right-padded response) so the
shared update (:mod:`rl_distill.engine.update`) trains on them unchanged: cross-entropy on response tokens only.
Shapes: N examples, P prompt columns, T target columns.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from rl_distill.engine.metrics import MetricAccumulator
from rl_distill.engine.update import Learner, StepData, UpdateSettings, run_updates
from rl_distill.rollout.base import encode_prompts, pad_token_id
from rl_distill.tasks.base import Example
from rl_distill.typed_config import ConfigError


def check_sft_target(examples: list[Example], target: str) -> None:
    """Fail when an example lacks the ``target`` completion (``trace_clean``: only curated splits carry one),
    naming the first few. ``train`` calls it before any setup; :func:`sft_data` again for direct callers."""
    missing = [ex.id for ex in examples if getattr(ex, target) is None]
    if missing:
        raise ConfigError(f"sft.target is {target!r} but {len(missing)} of {len(examples)} training examples (e.g. "
                          f"{missing[:3]}) have no {target} (only curated splits carry one, teacher samples do not): "
                          "set sft.target to 'trace'")


def sft_data(tokenizer: Any, examples: list[Example], device: torch.device, target: str = "trace") -> StepData:
    """Prompts (with bos, left padded) and ``target`` + eos completions (right padded), as a :class:`StepData`."""
    check_sft_target(examples, target)
    prompt_ids, prompt_mask = encode_prompts(tokenizer, [ex.prompt for ex in examples])
    targets = [ids + [tokenizer.eos_token_id] for ids in
               tokenizer([getattr(ex, target) for ex in examples], add_special_tokens=False)["input_ids"]]
    width = max(len(t) for t in targets)
    pad = pad_token_id(tokenizer)
    response_ids = torch.tensor([t + [pad] * (width - len(t)) for t in targets], dtype=prompt_ids.dtype)
    response_mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in targets], dtype=prompt_mask.dtype)
    n_rows = len(examples)
    return StepData(
        input_ids=torch.cat([prompt_ids, response_ids], dim=1).to(device),
        attention_mask=torch.cat([prompt_mask, response_mask], dim=1).to(device),
        response_mask=response_mask.float().to(device),
        old_logprobs=torch.zeros(n_rows, width, device=device),
        advantages=torch.zeros(n_rows, device=device),
        response_start=prompt_ids.shape[1],
    )


def sft_step(learner: Learner, tokenizer: Any, settings: UpdateSettings, examples: list[Example], epochs: int,
             progress: float, metrics: MetricAccumulator, target: str = "trace") -> tuple[int, int]:
    """One SFT step on ``examples`` (``target``: which completion). Returns ``(tokens processed, skipped updates)``."""
    t0 = time.perf_counter()
    data = sft_data(tokenizer, examples, learner.accelerator.device, target)
    skipped = run_updates(learner, data, settings, epochs, progress, metrics)
    metrics.add("time/update_s", time.perf_counter() - t0)
    metrics.add("train/target_len_mean", data.response_mask.sum(dim=1).mean())
    return int(data.attention_mask.sum().item()), skipped
