"""R-TAP's plug-ins for the shared RL step: a recursive rollout engine and the confidence-based reward function.

One job: adapt R-TAP stage 2 (arXiv 2603.02099, Algorithm 1, lines 5-12) to the engine's two hooks, so the one
training loop (:func:`rl_distill.engine.trainer.train`) runs it unchanged:

- :class:`RecursiveRolloutEngine` is a :class:`~rl_distill.rollout.base.RolloutEngine` whose ``generate`` samples
  recursive trajectories (:func:`~rl_distill.rtap.trajectory.recursive_rollout`) and returns the truncated
  :class:`~rl_distill.rollout.base.RolloutBatch`; it keeps the last :class:`RecursiveRollout` for the reward.
- :class:`RTAPRewardFn` is the engine's ``reward_fn(completions, examples)``: it scores Conf(t) of every generated
  cycle with C_phi, computes R = R_increase + R_final + R_format + R_answer + R_length, then updates C_phi on the
  step's fresh cycles (labels from the verifier) so the confidence generator keeps up with the policy. The rewards
  of a step use C_phi as it was before that step's update.

Metric names are bare (the engine prefixes ``rollout/``): ``r_increase``, ``r_final``, ``r_format``, ``r_answer``,
``r_length``, ``accuracy``, ``m_mean``, ``cycles_mean``, ``first_cycle_accuracy``, ``conf_mean``, ``conf_auroc``,
``conf_update_loss``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rl_distill.rollout.base import FinishedRows, RolloutBatch, RolloutConfig, RolloutEngine
from rl_distill.rtap.calibration import auroc
from rl_distill.rtap.confidence import ConfidenceGenerator
from rl_distill.rtap.config import RTAPConfig
from rl_distill.rtap.rewards import rtap_rewards
from rl_distill.rtap.trajectory import RecursiveRollout, recursive_rollout
from rl_distill.tasks.base import Example, Task


def answer_lookup(examples: Sequence[Example]) -> dict[str, str]:
    """``{prompt: answer}``; a prompt listed twice with different answers is an error (the verifier needs one)."""
    table: dict[str, str] = {}
    for ex in examples:
        if table.setdefault(ex.prompt, ex.answer) != ex.answer:
            raise ValueError(f"prompt {ex.prompt!r} has two answers ({table[ex.prompt]!r}, {ex.answer!r})")
    return table


class RecursiveRolloutEngine(RolloutEngine):
    """Cycle-by-cycle rollouts (R-TAP) behind the rollout-engine interface; answers come from ``answers``."""

    def __init__(self, task: Task, answers: Mapping[str, str], *, max_cycles: int, stop_at_correct: bool = True,
                 sample_eos: bool = True, force_cycles: bool = True) -> None:
        super().__init__()
        self.task, self.answers = task, dict(answers)
        self.max_cycles, self.stop_at_correct, self.sample_eos = max_cycles, stop_at_correct, sample_eos
        self.force_cycles = force_cycles
        self.last: RecursiveRollout | None = None

    def sample(self, model: torch.nn.Module, tokenizer: Any, prompt_ids: Tensor, prompt_mask: Tensor,
               cfg: RolloutConfig, listener: FinishedRows | None = None) -> Tensor:
        raise NotImplementedError("RecursiveRolloutEngine samples cycle by cycle: call generate()")

    def generate(self, model: torch.nn.Module, tokenizer: Any, prompts: list[str], cfg: RolloutConfig,
                 with_logprobs: bool = True, listener: FinishedRows | None = None,
                 from_sampler: bool = False) -> RolloutBatch:
        # ``listener`` hears nothing: a row is final only after its last cycle, so rows are scored afterwards.
        missing = [p for p in prompts if p not in self.answers]
        if missing:
            raise KeyError(f"no answer known for prompt {missing[0]!r}: build the engine with the training examples")
        self.last = recursive_rollout(
            model, tokenizer, self.task, prompts, [self.answers[p] for p in prompts], cfg,
            max_cycles=self.max_cycles, stop_at_correct=self.stop_at_correct, sample_eos=self.sample_eos,
            force_cycles=self.force_cycles, with_logprobs=with_logprobs, from_sampler=from_sampler)
        return self.last.batch


def kept_confidences(conf_rows: Sequence[Sequence[float]], m: Tensor, max_cycles: int) -> Tensor:
    """[N, C] Conf(1..M) per row, zero-padded past M (ignored by the rewards)."""
    out = torch.zeros(len(conf_rows), max_cycles)
    for i, (row, m_i) in enumerate(zip(conf_rows, m.tolist())):
        out[i, :m_i] = torch.tensor(list(row[:m_i]), dtype=torch.float32)
    return out


class RTAPRewardFn:
    """The engine's ``reward_fn`` for R-TAP: Conf-based rewards, then C_phi's stage-2 update (Algorithm 1).

    It is also the run's :class:`~rl_distill.engine.checkpointing.CheckpointedState`: every training checkpoint
    holds C_phi as stage 2 left it (weights, its optimizer's state, the update count that seeds the next update),
    so a resumed stage 2 scores and updates exactly as the uninterrupted run would.
    """

    _CALLS = "rtap_reward.json"

    def __init__(self, engine: RecursiveRolloutEngine, generator: ConfidenceGenerator, cfg: RTAPConfig) -> None:
        self.engine, self.generator, self.cfg = engine, generator, cfg
        self.calls = 0

    def save_checkpoint(self, directory: Path) -> None:
        self.generator.save(directory / "confidence", with_optimizer=True)
        (directory / self._CALLS).write_text(json.dumps({"calls": self.calls}))

    def load_checkpoint(self, directory: Path) -> None:
        self.generator.restore(directory / "confidence")
        self.calls = int(json.loads((directory / self._CALLS).read_text())["calls"])

    def __call__(self, completions: Sequence[str], examples: Sequence[Example]) -> tuple[Tensor, dict[str, Any]]:
        rollout = self.engine.last
        if rollout is None or list(rollout.batch.texts) != list(completions):
            raise RuntimeError("RTAPRewardFn scores the RecursiveRolloutEngine's last rollout; they are out of step")
        n, c = len(completions), self.cfg.cycles.max_cycles
        # Conf(t) of every generated cycle with the current C_phi (before this step's update). [sum of cycles]
        flat_prompts = [p for p, texts in zip(rollout.prompts, rollout.cycle_texts) for _ in texts]
        flat_cycles = [t for texts in rollout.cycle_texts for t in texts]
        flat_labels = [y for ys in rollout.cycle_correct for y in ys]
        flat_conf = self.generator.score(flat_prompts, flat_cycles).tolist()
        conf_rows, pos = [], 0
        for texts in rollout.cycle_texts:
            conf_rows.append(flat_conf[pos:pos + len(texts)])
            pos += len(texts)
        m = rollout.m
        formed = torch.zeros(n, c, dtype=torch.bool)
        for i, row in enumerate(rollout.cycle_well_formed):
            formed[i, : len(row)] = torch.tensor(row, dtype=torch.bool)
        rewards = rtap_rewards(
            conf=kept_confidences(conf_rows, m, c), m=m, cycles_well_formed=formed, num_kept_cycles=m,
            answer_correct=rollout.answer_correct, lengths=rollout.batch.response_lengths.cpu(), cfg=self.cfg.rewards)

        metrics: dict[str, Any] = rewards.metrics(prefix="")
        metrics["accuracy"] = rewards.r_answer.mean()
        metrics["m_mean"] = m.float().mean()
        metrics["cycles_mean"] = rollout.num_generated.float().mean()
        metrics["first_cycle_accuracy"] = sum(ys[0] for ys in rollout.cycle_correct) / max(1, n)
        metrics["conf_mean"] = sum(flat_conf) / max(1, len(flat_conf))
        fresh_auroc = auroc(torch.tensor(flat_conf), torch.tensor(flat_labels))
        if not math.isnan(fresh_auroc):
            metrics["conf_auroc"] = fresh_auroc
        update = self.generator.update(flat_prompts, flat_cycles, flat_labels, steps=self.cfg.confidence_update_steps,
                                       lr=self.cfg.confidence_update_lr, seed=self.cfg.confidence.seed + self.calls)
        if "confidence/update_loss" in update:
            metrics["conf_update_loss"] = update["confidence/update_loss"]
        self.calls += 1
        return rewards.total, metrics
