"""The training loop: one ``train()`` for every method (grpo, kl_kd, rlad, sft, ...), through accelerate.

One job: run steps until ``total_steps``: sample a batch (:mod:`~rl_distill.engine.sampler`), do one RL or SFT step
(:mod:`~rl_distill.engine.rl_step`, :mod:`~rl_distill.engine.sft_step`), advance the LR schedule, log every
``log_every`` steps through the injected ``log_fn``, validate every ``validation.every`` steps, checkpoint every
``checkpoint.every`` steps, and write the final HF model to ``<output_dir>/final``. Methods differ only by the
registered loss name. Restarting with the same ``output_dir`` resumes from the newest complete checkpoint.

Scale-out is accelerate's: the same function runs under ``accelerate launch`` (DDP on CPU/GPU, FSDP, DeepSpeed);
prompts are split across processes and metrics averaged over them.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from rl_distill.core.losses import build_policy_loss
from rl_distill.engine.checkpointing import (
    CheckpointedState,
    TrainerState,
    gathered_state_dict,
    restore_latest,
    save_training_checkpoint,
)
from rl_distill.engine.config import TrainConfig
from rl_distill.engine.lora import AdapterDisabled, is_lora, merged, wrap_lora
from rl_distill.engine.metrics import MetricAccumulator, MetricHistory
from rl_distill.engine.optim import build_optimizer
from rl_distill.engine.rewards import RewardFn, outcome_reward_fn
from rl_distill.engine.rl_step import RLParts, StallWatch, concurrent_scoring_enabled, rl_step
from rl_distill.engine.sampler import PromptSampler
from rl_distill.engine.schedule import build_scheduler
from rl_distill.engine.sft_step import check_sft_target, sft_step
from rl_distill.engine.update import Learner, UpdateSettings, resolve_old_logprobs
from rl_distill.engine.validation import evaluate_counts, validation_subset
from rl_distill.models.checkpoint import atomic_dir, save_hf_dir
from rl_distill.models.factory import DTYPES, check_model_vocab, check_shared_vocab, resolve_dtype
from rl_distill.models.finite import nonfinite_training_state
from rl_distill.rollout.base import NonFiniteLogitsError, RolloutEngine, build_rollout_engine
from rl_distill.tasks.base import Example, Task

LogFn = Callable[[dict[str, float], int], None]

log = logging.getLogger(__name__)


class NonFiniteTrainingError(RuntimeError):
    """Too many consecutive steps had non-finite loss or gradients, or an update made the weights or the optimizer
    state non-finite; the run stopped without writing a checkpoint of that state."""


def _last_good(path: Path | None, root: Path) -> str:
    """What a stop message says about the state to go back to: the real newest checkpoint, or that none exists."""
    if path is None:
        return (f"no checkpoint was written yet (none under {root}), so a rerun starts this training from its "
                "initial model")
    return f"the last good state is {path}, which a rerun resumes from"


def _check_finite(model: torch.nn.Module, optimizer: Any, when: str, last_good: Path | None, root: Path,
                  config: TrainConfig) -> None:
    """Stop (:class:`NonFiniteTrainingError`) when a weight or an optimizer moment holds NaN/inf: such a state must
    never be sampled from or checkpointed (one pass over the tensors, one host sync)."""
    bad = nonfinite_training_state(model, optimizer)
    if bad is not None:
        raise NonFiniteTrainingError(
            f"{when}: {bad} holds NaN or inf. The run stops before sampling from or checkpointing this state; "
            f"{_last_good(last_good, root)}. Lower the learning rate (optimizer.lr={config.optimizer.lr!r}) or set "
            "max_grad_norm, or check the initial model."
        )


@dataclass(frozen=True)
class TrainResult:
    """What a run produced. ``history``: every logged metric as ``[(step, value), ...]``; ``summary``: last values."""

    final_step: int
    val_accuracy: float | None
    final_model_dir: Path
    history: dict[str, list[tuple[int, float]]]
    summary: dict[str, float]
    stopped_early: bool = False
    nonfinite_skipped: int = 0
    resumed_from: int | None = None
    # Tracking runs that logged the restored history before this one (oldest first; empty unless resumed).
    earlier_tracking_runs: tuple[str, ...] = ()


def _freeze(model: torch.nn.Module | None, device: torch.device, dtype: str | None = None) -> torch.nn.Module | None:
    """``model`` frozen (no grad, eval mode) on ``device``; cast to ``dtype`` on a copy, so that the caller's model
    keeps its precision (load it in that dtype to avoid the copy, as the pipelines do)."""
    if model is None:
        return None
    if dtype is not None and next(model.parameters()).dtype != DTYPES[dtype]:
        model = copy.deepcopy(model).to(DTYPES[dtype])
    model.requires_grad_(False)
    return model.eval().to(device)


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(config), default=str))


def _mean_over_processes(accelerator: Accelerator, logs: dict[str, float]) -> dict[str, float]:
    if accelerator.num_processes == 1 or not logs:
        return logs
    keys = sorted(logs)
    values = torch.tensor([logs[k] for k in keys], device=accelerator.device, dtype=torch.float64)
    return dict(zip(keys, accelerator.reduce(values, reduction="mean").tolist()))


class _Validator:
    """Validation accuracy summed over processes (each process scores its own shard)."""

    def __init__(self, accelerator: Accelerator, tokenizer: Any, task: Task, examples: list[Example],
                 config: TrainConfig) -> None:
        val = config.validation
        limited = validation_subset(examples, val.max_examples)
        # Equal shards: sharded models (FSDP, ZeRO-3) need every process to run the same number of generate calls.
        limited = limited[: len(limited) - len(limited) % accelerator.num_processes]
        self.difficulties = sorted({ex.difficulty for ex in limited})
        self.shard = limited[accelerator.process_index::accelerator.num_processes]
        # The policy as it is: validation decodes with its own temperature / top-p, no top-k or repetition penalty.
        self.rollout = replace(config.rollout, group_size=1, temperature=val.temperature, top_p=val.top_p, top_k=0,
                               repetition_penalty=1.0,
                               max_new_tokens=val.max_new_tokens or config.rollout.max_new_tokens)
        self.accelerator, self.tokenizer, self.task, self.batch_size = accelerator, tokenizer, task, val.batch_size

    def __call__(self, model: torch.nn.Module, engine: Any) -> dict[str, float]:
        if not self.difficulties:
            return {}
        counts = evaluate_counts(model, self.tokenizer, self.task, self.shard, self.rollout,
                                 batch_size=self.batch_size, engine=engine) if self.shard else {}
        table = torch.tensor([counts.get(d, [0, 0, 0]) for d in self.difficulties], dtype=torch.float64,
                             device=self.accelerator.device)  # [D, 3] correct, total, response tokens
        if self.accelerator.num_processes > 1:
            table = self.accelerator.reduce(table, reduction="sum")
        correct, total, tokens = table.sum(dim=0).tolist()
        out = {"val/accuracy": correct / max(total, 1.0), "val/response_len_mean": tokens / max(total, 1.0)}
        if len(self.difficulties) > 1:
            for d, row in zip(self.difficulties, table.tolist()):
                out[f"val/accuracy/d{d}"] = row[0] / max(row[1], 1.0)
        return out


def _update_early_stopping(state: TrainerState, config: TrainConfig, accuracy: float) -> None:
    stop = config.early_stopping
    if state.best_val is None or accuracy > state.best_val + stop.min_delta:
        state.best_val, state.vals_since_best = accuracy, 0
    else:
        state.vals_since_best += 1
    if stop.patience is not None and state.vals_since_best >= stop.patience:
        state.stopped_early = True


def train(*, policy: torch.nn.Module, tokenizer: Any, task: Task, train_examples: list[Example],
          val_examples: list[Example], config: TrainConfig, teacher: torch.nn.Module | None = None,
          reference: torch.nn.Module | None = None, log_fn: LogFn | None = None, output_dir: Path,
          reward_fn: RewardFn | None = None, progress: bool = True, teacher_tokenizer: Any = None,
          rollout_engine: RolloutEngine | None = None, label: str | None = None,
          tracking_run: str | None = None, extra_state: CheckpointedState | None = None) -> TrainResult:
    """Train ``policy`` in place with the method named by ``config.loss.name``; see the module docstring.

    ``teacher`` is needed by losses with ``needs_teacher`` (kl_kd, rlad); ``reference`` defaults to a frozen copy of
    the initial policy when the loss needs one (``beta > 0``). ``teacher_tokenizer``, if given, must equal
    ``tokenizer`` token for token. Raises :class:`NonFiniteTrainingError` after ``max_nonfinite_steps``
    consecutive non-finite steps (the newest checkpoint stays the last good one).
    ``rollout_engine``, if given, replaces the configured engine for training rollouts only (R-TAP's recursive
    cycles); validation keeps sampling freely with the engine ``config.rollout`` names. ``label`` names the run in
    the progress bar and the log (``<model>/<phase>``, e.g. ``teacher/grpo``; default: the loss name).
    ``extra_state`` (e.g. R-TAP's reward function, which trains its confidence generator as it goes) is saved in
    every checkpoint and restored on resume.

    A resume first re-publishes the checkpoint's metric history through ``log_fn``, step by step, so the run it
    logs into (``tracking_run``: its id, kept in the checkpoint) holds every step exactly once: steps up to the
    checkpoint from the history, later ones as they are trained. The run that was interrupted keeps what it logged;
    ``TrainResult.earlier_tracking_runs`` names it. Resuming into a run the checkpoint already names re-publishes
    nothing (that run holds the history).
    """
    output_dir = Path(output_dir)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    set_seed(config.seed)
    loss_fn = build_policy_loss(config.loss.name, config.loss.typed)
    total = config.steps_for(len(train_examples))
    label = label or config.loss.name
    if config.is_sft:
        check_sft_target(train_examples, config.sft.target)
    if teacher_tokenizer is not None:
        check_shared_vocab(teacher_tokenizer, tokenizer)
    if teacher is not None:
        check_model_vocab(teacher, tokenizer)
    elif getattr(loss_fn, "needs_teacher", False):
        raise ValueError(f"loss '{config.loss.name}' needs a teacher (it scores the student's tokens): pass teacher=")
    if config.lora is not None:
        policy = wrap_lora(policy, config.lora)  # only the adapters require grad (and reach the optimizer)
    if getattr(loss_fn, "needs_ref", False) and reference is None:
        # the initial policy, taken before any resume overwrites the weights; with LoRA the base, adapters off
        reference = AdapterDisabled(policy) if config.lora is not None else copy.deepcopy(policy)
    teacher = _freeze(teacher, accelerator.device, resolve_dtype(config.teacher_dtype, accelerator.device))
    reference = _freeze(reference, accelerator.device)

    optimizer = build_optimizer(policy, config.optimizer)
    scheduler = build_scheduler(optimizer, total, config.schedule)
    model, optimizer = accelerator.prepare(policy, optimizer)

    ckpt_root = Path(config.checkpoint.dir) if config.checkpoint.dir else output_dir / "checkpoints"
    config_dict = _config_dict(config)
    state, resumed_from, last_good = TrainerState(config=config_dict), None, None
    if config.checkpoint.resume:
        restored = restore_latest(accelerator, ckpt_root, config_dict, scheduler, extra_state)
        if restored is not None:
            state, last_good = restored
            state.config, resumed_from = config_dict, state.step
            if accelerator.is_main_process:
                log.info("%s: resuming from step %d of %d (checkpoint %s)", label, state.step, total, last_good)
    earlier_runs = tuple(r for r in state.tracking_runs if r != tracking_run)
    same_run = tracking_run is not None and tracking_run in state.tracking_runs  # it already holds the history
    if tracking_run is not None and not same_run:
        state.tracking_runs.append(tracking_run)
    _check_finite(model, optimizer, "the starting weights" if resumed_from is None else f"checkpoint {last_good}",
                  last_good, ckpt_root, config)

    batch_size = config.sft.batch_size if config.is_sft else config.prompts_per_step
    sampler = PromptSampler(train_examples, batch_size, config.seed, config.prompt_sampling,
                            accelerator.num_processes, accelerator.process_index)
    # dynamic=None: the first shape compiles static; a new sequence length then recompiles once with dynamic dims.
    learner = Learner(accelerator, model, optimizer, loss_fn,
                      torch.compile(model, dynamic=None) if config.compile_update else None)
    settings = UpdateSettings(
        mini_batch_size=config.mini_batch_size, grad_accum_steps=config.grad_accum_steps,
        max_grad_norm=config.max_grad_norm, temperature=1.0 if config.is_sft else config.rollout.temperature,
        chunk_size=config.logprob_chunk_size, vocab_size=len(tokenizer),
    )
    engine = build_rollout_engine(config.rollout)
    parts = RLParts(tokenizer=tokenizer, engine=rollout_engine or engine, rollout=config.rollout,
                    reward_fn=reward_fn or outcome_reward_fn(task, config.reward), advantage=config.advantage,
                    overlong=config.overlong,
                    teacher=teacher, reference=reference,
                    # the adapter switch of a LoRA reference is module state: never beside the policy's rollout
                    concurrent_scoring=(concurrent_scoring_enabled(config.concurrent_scoring, accelerator.device)
                                        and not isinstance(reference, AdapterDisabled)),
                    old_logprobs=resolve_old_logprobs(config.old_logprobs, policy))
    validate = _Validator(accelerator, tokenizer, task, val_examples, config)
    metrics, history = MetricAccumulator(), MetricHistory(state.history)
    mu = 1 if config.is_sft else config.mu
    stall = StallWatch()

    bar = tqdm(total=total, initial=state.step, disable=not (progress and accelerator.is_main_process),
               desc=label, dynamic_ncols=True)

    def publish(logs: dict[str, float], step: int) -> None:
        history.record(logs, step)
        state.history = history.to_json()
        if log_fn is not None and accelerator.is_main_process:
            log_fn(logs, step)

    if resumed_from is not None and not same_run and log_fn is not None and accelerator.is_main_process:
        for step, logs in history.by_step():  # the checkpoint's steps into this run, each once
            log_fn(logs, step)
    try:
        if config.validation.at_start and state.step == 0:
            # The starting model's accuracy: every curve begins at the warm start (HF Trainer's eval_on_start).
            start_logs = validate(accelerator.unwrap_model(model), engine)
            if start_logs:
                publish(start_logs, 0)
        while state.step < total and not state.stopped_early:
            t0 = time.perf_counter()
            examples = sampler.batch(state.step)
            frac = state.step / max(1, total - 1)  # 0 at the first step, exactly 1 at the last (schedules end there)
            metrics.add("train/lr", scheduler.get_last_lr()[0])
            if config.is_sft:
                tokens, skipped = sft_step(learner, tokenizer, settings, examples, mu, frac, metrics,
                                           config.sft.target)
            else:
                try:
                    tokens, skipped = rl_step(learner, parts, settings, examples, mu, frac, metrics, stall,
                                              state.step + 1)
                except NonFiniteLogitsError as exc:  # finite weights whose logits overflow
                    largest = max(float(p.detach().abs().max()) for p in model.parameters())
                    raise NonFiniteTrainingError(
                        f"step {state.step + 1}: {exc}; the largest |weight| is {largest:.3g}; "
                        f"{_last_good(last_good, ckpt_root)}. Lower the learning rate "
                        f"(optimizer.lr={config.optimizer.lr!r}) or set max_grad_norm.") from exc
            scheduler.step()
            state.step += 1
            _check_finite(model, optimizer, f"after the update of step {state.step}", last_good, ckpt_root, config)
            step_s = time.perf_counter() - t0
            metrics.add("time/step_s", step_s)
            metrics.add("time/tokens_per_s", tokens / step_s)

            if skipped:
                state.nonfinite_total += 1
                state.nonfinite_consecutive += 1
            else:
                state.nonfinite_consecutive = 0
            if state.nonfinite_consecutive >= config.max_nonfinite_steps:
                raise NonFiniteTrainingError(
                    f"{state.nonfinite_consecutive} consecutive steps (up to step {state.step}) had non-finite loss "
                    f"or gradients; stopping. No checkpoint was written for them: "
                    f"{_last_good(last_good, ckpt_root)}. Lower the learning rate or check the rewards/loss config."
                )

            logs: dict[str, float] = {}
            if state.step % config.log_every == 0 or state.step == total:
                logs = _mean_over_processes(accelerator, metrics.flush())
                logs["train/nonfinite_skipped"] = float(state.nonfinite_total)
            val_every = config.validation.every
            if (val_every and state.step % val_every == 0) or state.step == total:
                val_logs = validate(accelerator.unwrap_model(model), engine)
                if val_logs:
                    state.val_accuracy = val_logs["val/accuracy"]
                    _update_early_stopping(state, config, state.val_accuracy)
                    logs.update(val_logs)
            if logs:
                publish(logs, state.step)
                bar.set_postfix({k.split("/")[-1]: f"{logs[k]:.3g}" for k in
                                 ("rollout/reward_mean", "train/loss", "val/accuracy") if k in logs})
            bar.update(1)
            due = state.step % config.checkpoint.every == 0 or state.step == total or state.stopped_early
            if due and state.nonfinite_consecutive == 0:  # never checkpoint inside a non-finite streak
                last_good = save_training_checkpoint(accelerator, model, optimizer, scheduler, tokenizer, ckpt_root,
                                                     state, config.checkpoint.keep_last, extra_state)
    finally:
        bar.close()

    final_dir = output_dir / "final"
    full = gathered_state_dict(accelerator, model)
    if accelerator.is_main_process:
        with atomic_dir(final_dir, meta={"step": state.step}) as tmp:
            final_model = accelerator.unwrap_model(model)
            save_hf_dir(merged(final_model) if is_lora(final_model) else final_model, tokenizer, tmp, full)
    accelerator.wait_for_everyone()
    return TrainResult(
        final_step=state.step, val_accuracy=state.val_accuracy, final_model_dir=final_dir,
        history=history.data, summary=history.last(), stopped_early=state.stopped_early,
        nonfinite_skipped=state.nonfinite_total, resumed_from=resumed_from, earlier_tracking_runs=earlier_runs,
    )
