"""The policy update shared by every method: epochs of micro-batches through the loss looked up by name.

One job: given one step's rows with everything cached (old/teacher/reference log-probs, advantages), run ``mu``
epochs of shuffled micro-batches of ``mini_batch_size`` rows, one optimizer update every ``grad_accum_steps``
micro-batches, with gradient clipping and a non-finite guard. Methods differ only in the loss object
(``build_policy_loss(name)``) and in which cached fields they need; RL and SFT both end here.

Non-finite guard: before each optimizer update the gradient norm and the accumulated loss are checked (one host
sync per update); a non-finite update is skipped (gradients dropped, weights untouched) and counted.
Shapes: N rows, P prompt columns, T response columns, V vocabulary.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

from rl_distill.core.logprobs import token_logprobs
from rl_distill.core.types import PolicyBatch
from rl_distill.engine.metrics import MetricAccumulator
from rl_distill.models.scoring import response_logits


@dataclass(frozen=True)
class StepData:
    """One step's rows, cached before the update (tensors on the training device).

    Attributes:
        input_ids: [N, P + T] left-padded prompt then right-padded response.
        attention_mask: [N, P + T]
        response_mask: [N, T] float, 1 on response tokens (eos included).
        old_logprobs: [N, T] log pi_old (no grad); for SFT a zero placeholder. None: the update's own detached
            log-probs stand in (only where :func:`old_logprobs_redundant` holds and the forward is deterministic:
            every micro-batch is scored by the weights that sampled it).
        advantages: [N] or [N, T]; for SFT zeros.
        ref_logprobs / teacher_logprobs: [N, T] or None; teacher_logits: [N, T, V] or None.
    """

    input_ids: Tensor
    attention_mask: Tensor
    response_mask: Tensor
    old_logprobs: Tensor | None
    advantages: Tensor
    response_start: int
    ref_logprobs: Tensor | None = None
    teacher_logprobs: Tensor | None = None
    teacher_logits: Tensor | None = None

    @property
    def num_rows(self) -> int:
        return self.input_ids.shape[0]

    def rows(self, index: Tensor) -> StepData:
        """The rows ``index``, with prompt columns that are padding in every selected row trimmed away."""
        picked = {f.name: (getattr(self, f.name)[index] if isinstance(getattr(self, f.name), Tensor)
                           else getattr(self, f.name)) for f in fields(self)}
        prompt_cols = picked["attention_mask"][:, : self.response_start]
        first_real = int((prompt_cols.sum(dim=0) > 0).nonzero()[0].item()) if prompt_cols.any() else 0
        first_real = min(first_real, self.response_start - 1)  # keep one column: the logits before response token 0
        if first_real:
            picked["input_ids"] = picked["input_ids"][:, first_real:]
            picked["attention_mask"] = picked["attention_mask"][:, first_real:]
            picked["response_start"] = self.response_start - first_real
        return StepData(**picked)


@dataclass(frozen=True)
class Learner:
    """What every update touches: the accelerator, the prepared policy, its optimizer and the loss by name.

    ``update_model``, if set, is what the loss's forward/backward runs through: the policy under ``torch.compile``
    (``compile_update``), sharing its parameters. Sampling, old-policy scoring and checkpoints use ``model``.
    """

    accelerator: Any
    model: torch.nn.Module
    optimizer: Any
    loss_fn: Any
    update_model: torch.nn.Module | None = None


@dataclass(frozen=True)
class UpdateSettings:
    """Hyper-parameters of the update loop (from :class:`~rl_distill.engine.config.TrainConfig`)."""

    mini_batch_size: int
    grad_accum_steps: int
    max_grad_norm: float | None
    temperature: float = 1.0
    chunk_size: int | None = None
    vocab_size: int | None = None


def has_active_dropout(model: torch.nn.Module) -> bool:
    """Whether a train-mode forward of ``model`` is random: an ``nn.Dropout`` with p > 0, or an HF config dropout
    (``attention_dropout``, ``hidden_dropout``, ``dropout``, ...) above 0, which HF models apply functionally."""
    if any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules()):
        return True
    config = getattr(model, "config", None)
    rates = [getattr(config, name, 0.0) for name in dir(config) if "dropout" in name and not name.startswith("_")]
    return any(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in rates)


def resolve_old_logprobs(mode: str, model: torch.nn.Module) -> str:
    """The run's ``old_logprobs`` mode: ``auto`` becomes ``forward`` when ``model``'s train-mode forward is random
    (:func:`has_active_dropout`), since the update's own log-probs then differ from the sampler's; else ``mode``.
    Resolved once per run: dropout does not change between steps."""
    return "forward" if mode == "auto" and has_active_dropout(model) else mode


def old_logprobs_redundant(num_rows: int, settings: UpdateSettings, epochs: int) -> bool:
    """Whether the old-policy forward pass is provably redundant for a step of ``num_rows`` rows (TRL's shortcut),
    given a deterministic forward (:func:`resolve_old_logprobs` rules out dropout).

    True when ``epochs`` (mu) is 1 and the step's ``ceil(num_rows / mini_batch_size)`` micro-batches all fall in one
    optimizer update (``<= grad_accum_steps``): then every micro-batch's forward runs on the weights that sampled its
    rows, so log pi_old = log pi_theta.detach() and the update can take them from its own forward. One optimizer
    update per step is a per-process property (the update boundaries are the same on every process), so this holds
    under DDP too.
    """
    micro_batches = -(-num_rows // settings.mini_batch_size)
    return epochs == 1 and micro_batches <= settings.grad_accum_steps


def _micro_batches(num_rows: int, size: int) -> list[Tensor]:
    order = torch.randperm(num_rows)  # global torch RNG: restored on resume
    return [order[lo:lo + size] for lo in range(0, num_rows, size)]


def _loss_on(model: torch.nn.Module, loss_fn: Any, data: StepData, settings: UpdateSettings, progress: float) -> Any:
    logits = response_logits(model, data.input_ids, data.attention_mask, data.response_start,
                             settings.temperature, settings.vocab_size)  # [n, T, V]
    targets = data.input_ids[:, data.response_start:]
    kwargs = {} if settings.chunk_size is None else {"chunk_size": settings.chunk_size}
    logprobs = token_logprobs(logits, targets, **kwargs)  # [n, T] fp32, with grad
    old = logprobs.detach() if data.old_logprobs is None else data.old_logprobs
    batch = PolicyBatch(
        logprobs=logprobs, old_logprobs=old, advantages=data.advantages,
        response_mask=data.response_mask, ref_logprobs=data.ref_logprobs, teacher_logprobs=data.teacher_logprobs,
        student_logits=logits if getattr(loss_fn, "needs_logits", False) else None,
        teacher_logits=data.teacher_logits, progress=progress,
    )
    return loss_fn(batch)


def run_updates(learner: Learner, data: StepData, settings: UpdateSettings, epochs: int, progress: float,
                metrics: MetricAccumulator) -> int:
    """Run ``epochs`` passes over ``data``; returns the number of optimizer updates skipped as non-finite."""
    accelerator, model, optimizer, loss_fn = learner.accelerator, learner.model, learner.optimizer, learner.loss_fn
    forward_model = learner.update_model if learner.update_model is not None else model
    model.train()
    skipped = 0
    params = [p for p in model.parameters() if p.requires_grad]
    max_norm = settings.max_grad_norm if settings.max_grad_norm is not None else math.inf
    for _ in range(epochs):
        micro = _micro_batches(data.num_rows, settings.mini_batch_size)
        for lo in range(0, len(micro), settings.grad_accum_steps):
            group = micro[lo:lo + settings.grad_accum_steps]
            loss_sum = torch.zeros((), device=accelerator.device)
            for i, index in enumerate(group):
                last = i == len(group) - 1
                sync = contextlib.nullcontext() if last else accelerator.no_sync(model)
                with sync:
                    out = _loss_on(forward_model, loss_fn, data.rows(index.to(data.input_ids.device)), settings,
                                   progress)
                    accelerator.backward(out.loss / len(group))
                loss_sum = loss_sum + out.loss.detach()
                metrics.add("train/loss", out.loss.detach())
                metrics.add_all("train/", out.metrics)
            grad_norm = accelerator.clip_grad_norm_(params, max_norm)
            bad = ~torch.isfinite(loss_sum)
            if grad_norm is not None:
                grad_norm = torch.as_tensor(grad_norm, device=accelerator.device).float()
                bad = bad | ~torch.isfinite(grad_norm)
                metrics.add("train/grad_norm", torch.nan_to_num(grad_norm, nan=0.0, posinf=0.0))
            if accelerator.num_processes > 1:
                bad = accelerator.reduce(bad.float(), reduction="sum") > 0
            if bool(bad.item()):  # the one host sync per update
                skipped += 1
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return skipped
