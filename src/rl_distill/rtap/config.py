"""Typed, frozen config of an R-TAP run: recursive cycles, confidence generator, rewards and the GRPO stage.

One job: every R-TAP default, once, validated at load (``from_dict(RTAPConfig, params, where=...)``).
The paper's values (R-TAP, arXiv 2603.02099, Sec. 4 implementation details; method.md section 5), the two
configurations that ship, and why the CPU one differs. The run's config is the ``rtap`` block with its ``train`` laid
over ``distill.common`` (:func:`rl_distill.pipelines.rtap.nodes.rtap_config`); ``tests/rtap/test_paper_config.py``
checks every row of this table against both environments' YAML.

| knob | paper | ``conf/rtap_paper`` (GPU) | ``conf/base`` (CPU) | why the CPU value |
|---|---|---|---|---|
| ``cycles.max_cycles`` (T) | 4 | 4 | 2 | two cycles keep a 2-core step at seconds; evaluation allows 4 |
| ``train.rollout.group_size`` (G) | 12 | 12 | 8 | ``distill.common``'s G: R-TAP and GRPO on equal terms |
| ``train.mu`` (inner updates) | 12 | 12 | 1 | each epoch over the N rows is a full forward + backward |
| ``confidence_update_steps`` | 12 | 12 | 1 | C_phi updates per RL step, tied to mu (Algorithm 1) |
| ``train.loss.config.eps_low`` | 0.2 | 0.2 | 0.2 | same |
| ``train.loss.config.eps_high`` | 0.2 | 0.2 | 0.2 | same (no clip-higher) |
| ``train.loss.config.beta`` (KL) | 0.04 | 0.04 | 0.04 | same |
| ``rewards.tau`` | 0.55 | 0.55 | 0.55 | same |
| ``confidence.samples_per_question`` | 128 | 128 | 8 | 128 questions x 8 = 1k cycles in stage 1 |
| ``confidence.lr`` | 1e-5 | 1e-5 | 1e-3 | a 0.1M-parameter body; 1e-5 is for billion-parameter ones |
| ``confidence.lr_end`` | 1e-6 | 1e-6 | 1e-4 | as above |
| ``train.rollout.top_p`` | 0.95 | 0.95 | 1.0 | ``distill.common``'s sampling, as for GRPO |
| ``train.rollout.top_k`` | 50 | 50 | 0 | 0 = off; as above |
| ``train.rollout.repetition_penalty`` | 1.05 | 1.05 | 1.0 | 1 = off; as above |

The dataclass defaults below fill the keys a YAML leaves out (e.g. ``max_cycles = 4``, ``mu = 2``,
``samples_per_question = 16`` when neither ``rtap`` nor ``distill.common`` names them).

``mu`` and the C_phi update count are tied by default (``confidence.update_steps = None`` -> ``train.mu``),
following Algorithm 1 where both are updated each RL step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rl_distill.core.methods import MethodSpec, register_method
from rl_distill.engine.config import LossSpec, TrainConfig
from rl_distill.rollout.base import RolloutConfig
from rl_distill.rtap.rewards import RTAPRewardConfig
from rl_distill.rtap.stage1 import ConfidenceConfig
from rl_distill.typed_config import ConfigError, check_range

RTAP_LOSS = "grpo"


def _rtap_train_defaults() -> TrainConfig:
    """GRPO stage defaults (see the module table); ``rollout.max_new_tokens`` is the per-cycle token cap."""
    return TrainConfig(
        total_steps=60,
        prompts_per_step=8,
        rollout=RolloutConfig(group_size=8, temperature=1.0, max_new_tokens=160),
        loss=LossSpec(name=RTAP_LOSS, config={"eps_low": 0.2, "eps_high": 0.2, "beta": 0.04}),
        mu=2,
    )


@dataclass(frozen=True)
class CycleConfig:
    """Recursive rollout shape: up to ``max_cycles`` cycles (paper T = 4) of at most ``train.rollout.max_new_tokens``
    tokens each; see :mod:`rl_distill.rtap.trajectory` for ``stop_at_correct``, ``sample_eos`` and
    ``force_cycles`` [choices]."""

    max_cycles: int = 4
    stop_at_correct: bool = True
    sample_eos: bool = True
    force_cycles: bool = True

    def __post_init__(self) -> None:
        check_range("max_cycles", self.max_cycles, 1)


@dataclass(frozen=True)
class RTAPConfig:
    """One R-TAP run: stage 1 (``confidence``) then stage 2 (``train``: GRPO through the shared engine, with
    recursive rollouts over ``cycles`` and the ``rewards`` of R-TAP replacing the outcome reward).

    ``train.reward`` (the outcome reward) is unused here; ``train.validation.max_new_tokens`` None means
    ``max_cycles * rollout.max_new_tokens`` (free generation capped at T cycles' budget).
    """

    cycles: CycleConfig = field(default_factory=CycleConfig)
    confidence: ConfidenceConfig = field(default_factory=ConfidenceConfig)
    rewards: RTAPRewardConfig = field(default_factory=RTAPRewardConfig)
    train: TrainConfig = field(default_factory=_rtap_train_defaults)

    def __post_init__(self) -> None:
        if self.train.is_sft:
            raise ConfigError("train.loss.name='sft' is not an R-TAP stage; use 'grpo' (the paper's objective).")
        if self.train.rollout.engine != "hf":
            raise ConfigError(
                f"train.rollout.engine={self.train.rollout.engine!r}: R-TAP's cycle-by-cycle rollouts use the 'hf' "
                "engine (generate with a </answer> stop token)."
            )

    @property
    def confidence_update_steps(self) -> int:
        """C_phi updates per RL step (Algorithm 1): ``confidence.update_steps``, else the policy's ``mu``."""
        steps = self.confidence.update_steps
        return self.train.mu if steps is None else steps

    @property
    def confidence_update_lr(self) -> float:
        lr = self.confidence.update_lr
        return self.confidence.lr_end if lr is None else lr

    @property
    def trajectory_token_budget(self) -> int:
        """Most response tokens a trajectory can hold: T cycles of the per-cycle cap, plus one eos."""
        return self.cycles.max_cycles * self.train.rollout.max_new_tokens + 1



# R-TAP is its own trainer kind: a two-stage pipeline (pipelines/rtap) on GRPO's loss with recursive rollouts.
register_method(MethodSpec(
    "rtap", trainer="rtap", loss="grpo", needs_teacher=False,
    summary="GRPO on recursive think-answer cycles with confidence-generator rewards (R-TAP)"))
