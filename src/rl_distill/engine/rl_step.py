"""One RL step, the same for grpo, kl_kd and rlad: rollout -> reward -> advantages -> frozen scoring -> update.

One job: turn B prompts into one policy update. The method enters only through the loss object and its flags:
``needs_teacher`` (kl_kd, rlad) adds one no-grad teacher forward per step, ``needs_ref`` one reference forward,
``needs_logits`` keeps full teacher logits for full-vocabulary KL. Teacher and reference log-probs are computed once
per step and reused by every epoch and micro-batch (RLAD, arXiv 2602.22495, Sec. 4: "one teacher forward per batch").

Concurrent scoring (``concurrent_scoring``, :mod:`rl_distill.engine.frozen_stream`): the frozen forwards need only
the sampled tokens, so they run in a second thread: on each row as soon as the rollout sees it sample eos (while
the longer rows are still being generated), and on the rest while the policy scores its own old log-probs (the
rollout is then asked for its responses without them, and :func:`~rl_distill.rollout.base.with_old_logprobs` adds
them). The numbers are those of the sequential path up to float rounding; only the wall clock changes.

Old-policy log-probs (``old_logprobs: auto``): where the step makes one optimizer update with mu = 1
(:func:`~rl_distill.engine.update.old_logprobs_redundant`), the no-grad old-policy pass is skipped and the update
uses its own detached log-probs, as TRL's ``GRPOTrainer`` does at ``num_iterations = 1``; ``time/rollout_s`` then
holds generation only and ``rollout/old_logprobs_skipped`` is 1.

Metrics are 0-dim tensors or floats added to the step's accumulator: ``rollout/*``, ``time/*`` (``train/*`` come from
the update). ``time/rollout_s`` is generation plus the old-policy pass, ``time/teacher_s`` the teacher/reference time
the step waited for (all of it when sequential, only what the rollout did not hide when concurrent) and
``time/frozen_busy_s`` the frozen passes' own duration; concurrent runs add ``time/frozen_streamed_frac``, the
fraction of rows scored while the rollout was still running. Shapes: B prompts, G samples each, N = B*G rows, T response
tokens.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

from rl_distill.core.advantages import compute_advantages
from rl_distill.engine.config import OverlongConfig
from rl_distill.engine.frozen_stream import FrozenStream, Scores
from rl_distill.engine.metrics import MetricAccumulator
from rl_distill.engine.rewards import RewardFn, soft_overlong_penalty
from rl_distill.engine.scoring import FrozenModel, ScoreSettings, score_frozen_rows
from rl_distill.engine.update import Learner, StepData, UpdateSettings, old_logprobs_redundant, run_updates
from rl_distill.rollout.base import RolloutBatch, RolloutConfig, RolloutEngine, pad_token_id, with_old_logprobs
from rl_distill.tasks.base import Example

logger = logging.getLogger(__name__)


class StallWatch:
    """Warns once a run has had ``patience`` steps in a row in which every group's rewards were all equal.

    Then every outcome advantage is 0 (``rollout/zero_adv_frac`` = 1) and a loss driven by it gets no policy
    gradient: the student is too weak (or too strong) for the prompts, or the reward cannot tell its samples apart.
    Losses whose advantage does not come from the outcome (pure OPD) say so with ``uses_outcome_advantage = False``.
    """

    def __init__(self, patience: int = 3) -> None:
        self.patience = patience
        self.streak = 0
        self.warned = False

    def update(self, zero_adv_frac: float, step: int) -> None:
        self.streak = self.streak + 1 if zero_adv_frac >= 1.0 else 0
        if self.streak >= self.patience and not self.warned:
            self.warned = True
            logger.warning("every group has had zero advantage for %d steps in a row (up to step %d): the outcome "
                           "reward does not separate the samples, so the policy gradient is 0. Use prompts the "
                           "student solves sometimes (teacher_scoring filters), a larger group_size, or a warmer "
                           "student_init.", self.streak, step)


@dataclass(frozen=True)
class RLParts:
    """The RL-only pieces of a step (built once by the trainer)."""

    tokenizer: Any
    engine: RolloutEngine
    rollout: RolloutConfig
    reward_fn: RewardFn
    advantage: str
    overlong: OverlongConfig = OverlongConfig()
    teacher: torch.nn.Module | None = None
    reference: torch.nn.Module | None = None
    concurrent_scoring: bool = False
    old_logprobs: str = "forward"  # resolved for the run (update.resolve_old_logprobs): auto | forward | sampler


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # honest phase timings on GPU


def concurrent_scoring_enabled(mode: str, device: torch.device) -> bool:
    """Whether ``concurrent_scoring`` (``auto`` | ``on`` | ``off``) runs the frozen models beside the rollout.

    ``auto`` turns it on on CPU when the two threads' torch threads fit the cores this machine gives the local
    processes (``2 * torch.get_num_threads() * LOCAL_WORLD_SIZE <= cores``): otherwise they would only fight over
    the same cores. On GPU ``auto`` is off (both would queue on the same device).
    """
    if mode != "auto":
        return mode == "on"
    if device.type != "cpu":
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return 2 * torch.get_num_threads() * local_processes <= cores


def frozen_models(parts: RLParts, loss_fn: Any) -> list[FrozenModel]:
    """The frozen models ``loss_fn`` needs scored this step: the teacher (``needs_teacher``; with logits when
    ``needs_logits``) and the reference (``needs_ref``)."""
    models = []
    if getattr(loss_fn, "needs_teacher", False):
        if parts.teacher is None:
            raise ValueError("this loss needs a teacher (needs_teacher=True) but train() got teacher=None")
        models.append(FrozenModel("teacher", parts.teacher, bool(getattr(loss_fn, "needs_logits", False))))
    if getattr(loss_fn, "needs_ref", False):
        models.append(FrozenModel("reference", parts.reference))
    return models


def _rollout(policy: torch.nn.Module, parts: RLParts, prompts: list[str], models: list[FrozenModel],
             score: ScoreSettings, concurrent: bool,
             old: str = "forward") -> tuple[RolloutBatch, Scores, dict[str, float]]:
    """Rollout with old log-probs (``old``: ``forward`` pass, ``sampler``'s own, or ``none``, left at zero) and frozen
    scores: ``(batch, scores, time/* metrics)``. Concurrent: the frozen models score rows beside the rollout and
    beside the old-policy pass."""
    t0 = time.perf_counter()
    from_sampler = old == "sampler"  # engines that cannot record refuse it, naming the fix
    if not concurrent:
        batch = parts.engine.generate(policy, parts.tokenizer, prompts, parts.rollout, with_logprobs=old == "forward",
                                      from_sampler=from_sampler)
        t1 = time.perf_counter()
        scores = score_frozen_rows(models, batch.input_ids, batch.attention_mask, batch.response_start,
                                   batch.response_mask, score) if models else {}
        t2 = time.perf_counter()
        return batch, scores, {"rollout_s": t1 - t0, "teacher_s": t2 - t1, "frozen_busy_s": t2 - t1}
    with FrozenStream(models, score, pad_token_id(parts.tokenizer)) as stream:
        batch = parts.engine.generate(policy, parts.tokenizer, prompts, parts.rollout, with_logprobs=False,
                                      listener=stream, from_sampler=from_sampler)
        stream.finish(batch)
        if old == "forward":
            batch = with_old_logprobs(policy, batch, parts.rollout)
        t1 = time.perf_counter()
        scores = stream.result()
        t2 = time.perf_counter()
    return batch, scores, {"rollout_s": t1 - t0, "teacher_s": t2 - t1, "frozen_busy_s": stream.busy_s,
                           "frozen_streamed_frac": stream.streamed_rows / max(1, batch.response_ids.shape[0])}


def rl_step(learner: Learner, parts: RLParts, settings: UpdateSettings, examples: list[Example], epochs: int,
            progress: float, metrics: MetricAccumulator, stall: StallWatch | None = None,
            step: int = 0) -> tuple[int, int]:
    """One RL step on ``examples`` (this process's B prompts). Returns ``(tokens processed, skipped updates)``."""
    device = learner.accelerator.device
    policy = learner.accelerator.unwrap_model(learner.model)
    models = frozen_models(parts, learner.loss_fn)
    score = ScoreSettings(settings.temperature, settings.chunk_size, parts.rollout.logprob_batch_size,
                          settings.vocab_size)
    reuse_current = parts.old_logprobs == "auto" and old_logprobs_redundant(
        len(examples) * parts.rollout.group_size, settings, epochs)
    batch, scores, times = _rollout(
        policy, parts, [ex.prompt for ex in examples], models, score, parts.concurrent_scoring and bool(models),
        old="none" if reuse_current else ("sampler" if parts.old_logprobs == "sampler" else "forward"))
    _sync(device)

    t1 = time.perf_counter()
    rows = [examples[i] for i in batch.prompt_index.tolist()]  # N examples, G consecutive rows per prompt
    rewards, reward_metrics = parts.reward_fn(batch.texts, rows)
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    eos = parts.tokenizer.eos_token_id
    ended = (batch.response_ids == eos).any(dim=1)  # [N]; False = cut at max_new_tokens
    if parts.overlong.penalty_cache is not None:
        penalty = soft_overlong_penalty(batch.response_lengths.cpu(), parts.rollout.max_new_tokens,
                                        parts.overlong.penalty_cache)
        rewards = rewards + penalty
        reward_metrics = {**reward_metrics, "overlong_penalty_mean": penalty.mean()}
    advantages, adv_metrics = compute_advantages(parts.advantage, rewards, parts.rollout.group_size)
    if stall is not None and getattr(learner.loss_fn, "uses_outcome_advantage", True):
        stall.update(float(adv_metrics["zero_adv_frac"]), step)
    t2 = time.perf_counter()

    teacher_lp, teacher_logits = scores.get("teacher", (None, None))
    ref_lp = scores["reference"][0] if "reference" in scores else None
    mask = batch.response_mask.float()
    if parts.overlong.mask_truncated:  # DAPO overlong filtering: truncated responses get no loss
        mask = mask * ended.to(mask.device, mask.dtype).unsqueeze(1)
    data = StepData(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, response_mask=mask,
        old_logprobs=None if reuse_current else batch.old_logprobs, advantages=advantages.to(device),
        response_start=batch.response_start,
        ref_logprobs=ref_lp, teacher_logprobs=teacher_lp, teacher_logits=teacher_logits,
    )
    skipped = run_updates(learner, data, settings, epochs, progress, metrics)
    _sync(device)
    t3 = time.perf_counter()

    lengths = batch.response_lengths.float()
    ended = ended.float()
    metrics.add("rollout/reward_mean", rewards.mean())
    metrics.add("rollout/reward_std", rewards.std(unbiased=False))
    metrics.add_all("rollout/", adv_metrics)
    metrics.add_all("rollout/", reward_metrics)
    metrics.add("rollout/response_len_mean", lengths.mean())
    metrics.add("rollout/truncated_frac", 1.0 - ended.mean())
    metrics.add("rollout/old_logprobs_skipped", float(reuse_current))
    metrics.add_all("time/", {**times, "reward_s": t2 - t1, "update_s": t3 - t2})
    return batch.num_tokens(), skipped
