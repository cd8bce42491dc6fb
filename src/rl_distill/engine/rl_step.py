"""One RL step, the same for grpo, kl_kd and rlad: rollout -> reward -> advantages -> frozen scoring -> update.

One job: turn B prompts into one policy update. The method enters only through the loss object and its flags:
``needs_teacher`` (kl_kd, rlad) adds one no-grad teacher forward per step, ``needs_ref`` one reference forward,
``needs_logits`` keeps full teacher logits for full-vocabulary KL. Teacher and reference log-probs are computed once
per step and reused by every epoch and micro-batch (RLAD, arXiv 2602.22495, Sec. 4: "one teacher forward per batch").
Metrics are 0-dim tensors or floats added to the step's accumulator: ``rollout/*``, ``time/*`` (``train/*`` come from
the update). Shapes: B prompts, G samples each, N = B*G rows, T response tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from rl_distill.core.advantages import compute_advantages
from rl_distill.engine.metrics import MetricAccumulator
from rl_distill.engine.rewards import RewardFn
from rl_distill.engine.scoring import score_frozen
from rl_distill.engine.update import Learner, StepData, UpdateSettings, run_updates
from rl_distill.rollout.base import RolloutBatch, RolloutConfig, RolloutEngine
from rl_distill.tasks.base import Example


@dataclass(frozen=True)
class RLParts:
    """The RL-only pieces of a step (built once by the trainer)."""

    tokenizer: Any
    engine: RolloutEngine
    rollout: RolloutConfig
    reward_fn: RewardFn
    advantage: str
    teacher: torch.nn.Module | None = None
    reference: torch.nn.Module | None = None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # honest phase timings on GPU


def _frozen_scores(parts: RLParts, loss_fn: Any, batch: RolloutBatch,
                   settings: UpdateSettings) -> tuple[Any, Any, Any]:
    teacher_lp = teacher_logits = ref_lp = None
    common = {"temperature": settings.temperature, "chunk_size": settings.chunk_size,
              "micro_batch_size": parts.rollout.logprob_batch_size}
    if getattr(loss_fn, "needs_teacher", False):
        if parts.teacher is None:
            raise ValueError("this loss needs a teacher (needs_teacher=True) but train() got teacher=None")
        with_logits = getattr(loss_fn, "needs_logits", False)
        teacher_lp, teacher_logits = score_frozen(parts.teacher, batch, with_logits=with_logits,
                                                  vocab_size=settings.vocab_size, **common)
    if getattr(loss_fn, "needs_ref", False):
        ref_lp, _ = score_frozen(parts.reference, batch, **common)
    return teacher_lp, teacher_logits, ref_lp


def rl_step(learner: Learner, parts: RLParts, settings: UpdateSettings, examples: list[Example], epochs: int,
            progress: float, metrics: MetricAccumulator) -> tuple[int, int]:
    """One RL step on ``examples`` (this process's B prompts). Returns ``(tokens processed, skipped updates)``."""
    device = learner.accelerator.device
    policy = learner.accelerator.unwrap_model(learner.model)
    t0 = time.perf_counter()
    batch = parts.engine.generate(policy, parts.tokenizer, [ex.prompt for ex in examples], parts.rollout)
    _sync(device)
    t1 = time.perf_counter()

    rows = [examples[i] for i in batch.prompt_index.tolist()]  # N examples, G consecutive rows per prompt
    rewards, reward_metrics = parts.reward_fn(batch.texts, rows)
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    advantages, adv_metrics = compute_advantages(parts.advantage, rewards, parts.rollout.group_size)
    t2 = time.perf_counter()
    teacher_lp, teacher_logits, ref_lp = _frozen_scores(parts, learner.loss_fn, batch, settings)
    _sync(device)
    t3 = time.perf_counter()

    mask = batch.response_mask.float()
    data = StepData(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, response_mask=mask,
        old_logprobs=batch.old_logprobs, advantages=advantages.to(device), response_start=batch.response_start,
        ref_logprobs=ref_lp, teacher_logprobs=teacher_lp, teacher_logits=teacher_logits,
    )
    skipped = run_updates(learner, data, settings, epochs, progress, metrics)
    _sync(device)
    t4 = time.perf_counter()

    lengths = batch.response_lengths.float()
    eos = parts.tokenizer.eos_token_id
    ended = (batch.response_ids == eos).any(dim=1).float()
    metrics.add("rollout/reward_mean", rewards.mean())
    metrics.add("rollout/reward_std", rewards.std(unbiased=False))
    metrics.add_all("rollout/", adv_metrics)
    metrics.add_all("rollout/", reward_metrics)
    metrics.add("rollout/response_len_mean", lengths.mean())
    metrics.add("rollout/truncated_frac", 1.0 - ended.mean())
    metrics.add("time/rollout_s", t1 - t0)
    metrics.add("time/reward_s", t2 - t1)
    metrics.add("time/teacher_s", t3 - t2)
    metrics.add("time/update_s", t4 - t3)
    return batch.num_tokens(), skipped
