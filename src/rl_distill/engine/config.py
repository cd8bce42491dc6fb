"""Typed, frozen training configs: every default of the training engine lives here, once.

One job: validate a ``train`` parameter block at load. Build with
``rl_distill.typed_config.from_dict(TrainConfig, params, where="parameters_distill.yml:rlad")``; an unknown key or a
value out of range fails naming the key and the fix. The loss block is validated by building the loss
(``build_policy_loss(name, config)``), so a typo inside a loss's own config fails here too, before any model is built.

Mode: ``loss.name == "sft"`` trains by supervised fine-tuning on ``example.trace`` (+eos); any other loss trains by
RL on the prompts (rollouts, outcome reward, group advantages).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rl_distill.core.advantages import ADVANTAGE_ESTIMATORS
from rl_distill.core.losses import build_policy_loss
from rl_distill.engine.lora import LoraSettings
from rl_distill.models.factory import AUTO_DTYPE, DTYPES
from rl_distill.registry import UnknownNameError
from rl_distill.rollout.base import ROLLOUT_ENGINES, RolloutConfig
from rl_distill.tasks.rewards import OutcomeRewardConfig
from rl_distill.typed_config import ConfigError, check_choice, check_range

SFT_LOSS = "sft"
DECAYS = ("cosine", "linear", "constant")
PROMPT_SAMPLING = ("bucketed", "shuffle")
MIXED_PRECISION = ("no", "bf16", "fp16")
CONCURRENT_SCORING = ("auto", "on", "off")
OLD_LOGPROBS = ("auto", "forward", "sampler")


@dataclass(frozen=True)
class LossSpec:
    """Which registered policy loss to use, and that loss's own config (validated by the loss)."""

    name: str = "grpo"
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Unknown name or key -> error naming it. The typed config is kept (not a dataclass field: it stays out of
        # the logged params and the work-dir hash) so the loss is built from it without parsing again.
        try:
            loss = build_policy_loss(self.name, self.config)
        except UnknownNameError as exc:  # from_dict prefixes the block: "...:teacher.grpo.loss: name='ppo' ..."
            raise ConfigError(f"name={self.name!r}: {exc}") from None
        object.__setattr__(self, "_typed", loss.config)

    @property
    def typed(self) -> Any:
        """The loss's own frozen config (e.g. :class:`~rl_distill.core.losses.RLADConfig`), parsed once."""
        return self._typed


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW. Weight decay applies to matrices only (not to norms and biases). ``fused``: torch's single-kernel
    AdamW (``fused=True``, CPU and CUDA; what HF Trainer and TRL use by default since torch 2.8); None = torch's
    default (the multi-tensor ``foreach`` path). Same update up to float rounding."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    fused: bool | None = None

    def __post_init__(self) -> None:
        check_range("lr", self.lr, 0.0, lo_open=True)
        check_range("weight_decay", self.weight_decay, 0.0)
        check_range("eps", self.eps, 0.0, lo_open=True)
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas={self.betas!r} must be two numbers in [0, 1), e.g. [0.9, 0.999].")


@dataclass(frozen=True)
class ScheduleConfig:
    """Linear warmup over ``warmup_steps`` training steps, then decay to ``min_lr_ratio * lr`` at the last step."""

    warmup_steps: int = 0
    decay: str = "cosine"
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        check_range("warmup_steps", self.warmup_steps, 0)
        check_choice("decay", self.decay, DECAYS)
        check_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)


@dataclass(frozen=True)
class CheckpointConfig:
    """Checkpoint every ``every`` steps (and at the last step) under ``dir`` (default ``<output_dir>/checkpoints``),
    keeping the newest ``keep_last``; ``resume`` restarts from the newest complete one."""

    every: int = 50
    keep_last: int = 2
    resume: bool = True
    dir: str | None = None

    def __post_init__(self) -> None:
        check_range("every", self.every, 1)
        check_range("keep_last", self.keep_last, 1)


@dataclass(frozen=True)
class ValidationConfig:
    """Validation accuracy every ``every`` steps (0: only at the end) on at most ``max_examples`` examples.

    ``temperature = 0`` is greedy; ``max_new_tokens`` None uses the rollout's. ``at_start`` also validates the
    starting model at step 0 (before any update), so a learning curve begins at the warm start.
    """

    every: int = 50
    at_start: bool = False
    max_examples: int | None = 256
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        check_range("every", self.every, 0)
        check_range("temperature", self.temperature, 0.0)
        check_range("top_p", self.top_p, 0.0, 1.0, lo_open=True)
        check_range("batch_size", self.batch_size, 1)
        if self.max_examples is not None:
            check_range("max_examples", self.max_examples, 1)
        if self.max_new_tokens is not None:
            check_range("max_new_tokens", self.max_new_tokens, 1)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Stop when validation accuracy has not improved by ``min_delta`` for ``patience`` validations (None: never)."""

    patience: int | None = None
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        if self.patience is not None:
            check_range("patience", self.patience, 1)
        check_range("min_delta", self.min_delta, 0.0)


SFT_TARGETS = ("trace", "trace_clean")


@dataclass(frozen=True)
class SFTConfig:
    """SFT mode: ``batch_size`` traces per step; ``epochs`` (if set) replaces ``total_steps`` by
    ``ceil(epochs * len(train_examples) / batch_size)``; ``target``: which reference completion is learnt,
    ``trace`` (with the "wait," self-corrections data_curation wrote at its ``self_correction_rate``) or
    ``trace_clean`` (the same derivation without them)."""

    batch_size: int = 32
    epochs: float | None = None
    target: str = "trace"

    def __post_init__(self) -> None:
        check_range("batch_size", self.batch_size, 1)
        check_choice("target", self.target, SFT_TARGETS)
        if self.epochs is not None:
            check_range("epochs", self.epochs, 0.0, lo_open=True)


@dataclass(frozen=True)
class OverlongConfig:
    """What happens to responses cut at ``rollout.max_new_tokens`` (DAPO, arXiv 2503.14476, Sec. 3.4).

    - ``mask_truncated``: overlong filtering: a truncated response (no eos sampled) gets no loss; it still counts in
      its group's reward statistics.
    - ``penalty_cache``: soft overlong punishment (DAPO Eq. 13) with L_cache = this many tokens: a response of L
      tokens gets ``0`` for ``L <= L_max - L_cache``, ``(L_max - L_cache - L) / L_cache`` up to ``L_max``, ``-1``
      beyond; None = off. L_max = ``rollout.max_new_tokens``.
    """

    mask_truncated: bool = False
    penalty_cache: int | None = None

    def __post_init__(self) -> None:
        if self.penalty_cache is not None:
            check_range("penalty_cache", self.penalty_cache, 1)


@dataclass(frozen=True)
class TrainConfig:
    """One training run (any method). B = ``prompts_per_step`` (global, split over processes), G =
    ``rollout.group_size``. Each step: rollout -> reward -> advantages -> teacher/reference scoring (once) -> ``mu``
    epochs over the N = B*G rows in micro-batches of ``mini_batch_size`` rows, one optimizer update every
    ``grad_accum_steps`` micro-batches. The learning-rate schedule advances once per training step.

    Speed knobs that leave the algorithm alone:

    - ``concurrent_scoring`` (auto | on | off): teacher/reference forwards in a second thread, on each response as
      soon as it is sampled (:mod:`rl_distill.engine.frozen_stream`); ``auto`` = on for CPU runs whose torch threads
      leave a core free (:func:`rl_distill.engine.rl_step.concurrent_scoring_enabled`).
    - ``teacher_dtype`` (float32 | bfloat16 | float16 | auto): the precision the frozen teacher's matmuls run in
      (its log-softmax is always fp32); ``auto`` = bfloat16 where the hardware multiplies it natively (AMX /
      AVX512-BF16 CPUs, bf16 GPUs), else float32. Default float32: the same numbers on every machine. The policy and
      the reference always run in their own dtype.
    - ``old_logprobs`` (auto | forward | sampler): where log pi_old comes from. ``forward``: a no-grad forward pass
      of the policy after the rollout. ``auto``: when that pass is provably redundant, the detached log-probs of the
      update's own forward (TRL's shortcut): ``mu = 1`` and every micro-batch of the step in one optimizer update
      (``ceil(rows / mini_batch_size) <= grad_accum_steps``) and no active dropout, so every micro-batch is scored
      by the weights that sampled it (:func:`rl_distill.engine.update.old_logprobs_redundant`). Same algorithm; the
      ratio is then exactly 1 at the first (only) update instead of 1 up to float rounding. Otherwise ``forward``.
      ``sampler``: recorded by the rollout engine while it samples (``hf``:
      :class:`rl_distill.rollout.hf.SampledLogprobs`, O(rows) memory per token), the same quantity (log-softmax
      at the sampling temperature, before top-p) from the KV-cached decode; it matches the forward pass within
      1e-5 (tested), not bit for bit.
      Needs an engine that records them and ``rollout.min_new_tokens: 0``.
    - ``compile_update``: the update's forward and backward run through ``torch.compile`` of the policy (same
      parameters; sampling and scoring stay eager). Compiling costs tens of seconds on a CPU (41 s for the 1M
      ``bench/vs_trl.py`` model on 2 cores) and a recompile with dynamic shapes when the lengths change; it pays on
      long runs (``bench/vs_trl.py``: the update 1.3x faster). Same update up to float rounding.

    ``lora`` (:class:`rl_distill.engine.lora.LoraSettings`): train LoRA adapters instead of every weight; the
    reference is the base with adapters off, the final directory is merged (:mod:`rl_distill.engine.lora`).
    """

    seed: int = 0
    total_steps: int = 100
    prompts_per_step: int = 16
    prompt_sampling: str = "bucketed"
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    loss: LossSpec = field(default_factory=LossSpec)
    advantage: str = "grpo"
    reward: OutcomeRewardConfig = field(default_factory=OutcomeRewardConfig)
    overlong: OverlongConfig = field(default_factory=OverlongConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    mu: int = 1
    mini_batch_size: int = 64
    grad_accum_steps: int = 1
    max_grad_norm: float | None = 1.0
    log_every: int = 1
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    max_nonfinite_steps: int = 3
    logprob_chunk_size: int | None = None
    mixed_precision: str = "no"
    concurrent_scoring: str = "auto"
    teacher_dtype: str = "float32"
    old_logprobs: str = "auto"
    compile_update: bool = False
    lora: LoraSettings | None = None

    def __post_init__(self) -> None:
        check_range("total_steps", self.total_steps, 1)
        check_range("prompts_per_step", self.prompts_per_step, 1)
        check_choice("prompt_sampling", self.prompt_sampling, PROMPT_SAMPLING)
        check_choice("advantage", self.advantage, ADVANTAGE_ESTIMATORS.names())
        for name in ("mu", "mini_batch_size", "grad_accum_steps", "log_every", "max_nonfinite_steps"):
            check_range(name, getattr(self, name), 1)
        if self.max_grad_norm is not None:
            check_range("max_grad_norm", self.max_grad_norm, 0.0, lo_open=True)
        if self.logprob_chunk_size is not None:
            check_range("logprob_chunk_size", self.logprob_chunk_size, 1)
        check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        check_choice("concurrent_scoring", self.concurrent_scoring, CONCURRENT_SCORING)
        check_choice("teacher_dtype", self.teacher_dtype, (AUTO_DTYPE, *DTYPES))
        check_choice("old_logprobs", self.old_logprobs, OLD_LOGPROBS)
        if self.old_logprobs == "sampler" and not self.is_sft:
            if not ROLLOUT_ENGINES.get(self.rollout.engine).records_logprobs:
                raise ConfigError(f"old_logprobs=sampler: rollout.engine={self.rollout.engine!r} does not record "
                                  "sampling log-probs; use old_logprobs: auto (or forward), or rollout.engine: hf.")
            if self.rollout.min_new_tokens:
                raise ConfigError(f"old_logprobs=sampler needs rollout.min_new_tokens=0 (got "
                                  f"{self.rollout.min_new_tokens}): its eos mask is applied before the sampler's "
                                  "log-probs are taken. Use old_logprobs: auto or forward with min_new_tokens.")
            if self.rollout.repetition_penalty != 1.0:
                raise ConfigError(f"old_logprobs=sampler needs rollout.repetition_penalty=1 (got "
                                  f"{self.rollout.repetition_penalty}): the penalty changes the logits before the "
                                  "sampler's log-probs are taken. Use old_logprobs: auto or forward with it.")
        if self.overlong.penalty_cache is not None and self.overlong.penalty_cache > self.rollout.max_new_tokens:
            raise ConfigError(f"overlong.penalty_cache={self.overlong.penalty_cache} exceeds rollout.max_new_tokens="
                              f"{self.rollout.max_new_tokens}; use a cache of at most max_new_tokens tokens.")
        if self.lora is not None and self.rollout.engine != "hf":
            raise ConfigError(f"lora with rollout.engine={self.rollout.engine!r}: only the hf engine samples from the "
                              "adapted policy here; use rollout.engine: hf, or drop lora.")
        if not self.is_sft and self.rollout.temperature == 0.0:
            raise ConfigError("rollout.temperature=0 (greedy) gives G identical samples: RL needs temperature > 0.")

    @property
    def is_sft(self) -> bool:
        return self.loss.name == SFT_LOSS

    def steps_for(self, num_train_examples: int) -> int:
        """Total training steps: ``total_steps``, or in SFT mode with ``sft.epochs`` set, the epochs' worth."""
        if self.is_sft and self.sft.epochs is not None:
            return max(1, math.ceil(self.sft.epochs * num_train_examples / self.sft.batch_size))
        return self.total_steps
