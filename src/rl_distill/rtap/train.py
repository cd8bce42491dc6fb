"""R-TAP end to end, Kedro-free: stage 1 trains the confidence generator, stage 2 runs GRPO through the shared engine.

One job: the ``rtap`` method's single entry point (R-TAP, Lee, Chee, Ro, arXiv 2603.02099, Algorithm 1):

1. Stage 1 (:func:`~rl_distill.rtap.stage1.train_confidence_generator`): C_phi learns from the policy's own
   single-cycle answers to the RL questions (``train_examples``), or to ``split_examples`` (the SFT training split)
   where ``confidence.questions`` is ``train_examples``; its held-out AUROC / ECE are returned as ``confidence/*``
   metrics (and streamed through ``confidence_log_fn``) so the pipeline can log them in their own nested MLflow run.
   The stage-1 C_phi is saved under ``<output_dir>/confidence_stage1`` (with its per-step loss curve) and reused
   when the run is resumed with the same ``output_dir``; a run that loads it replays the saved curve through
   ``confidence_log_fn``, so each run's MLflow record shows stage 1's curve whether it trained or loaded C_phi.
2. Stage 2: :func:`rl_distill.engine.trainer.train` with loss ``grpo`` (compiled ratio kernel), recursive rollouts
   (:class:`~rl_distill.rtap.step.RecursiveRolloutEngine`) and the R-TAP reward
   (:class:`~rl_distill.rtap.step.RTAPRewardFn`, which also updates C_phi on every step's fresh cycles). The loop is
   the engine's: no second training loop lives here. Validation generates freely (no C_phi), capped at
   ``max_cycles * per-cycle`` tokens. Every training checkpoint carries C_phi's stage-2 state (the reward function
   is the engine's ``extra_state``), so a resume in stage 2 continues bit for bit. The final C_phi is saved under
   ``<output_dir>/confidence``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rl_distill.engine.config import TrainConfig
from rl_distill.engine.trainer import TrainResult, train
from rl_distill.rtap.confidence import ConfidenceGenerator
from rl_distill.rtap.config import RTAPConfig
from rl_distill.rtap.stage1 import train_confidence_generator
from rl_distill.rtap.step import RecursiveRolloutEngine, RTAPRewardFn, answer_lookup
from rl_distill.tasks.base import Example, Task

LogFn = Callable[[dict[str, float], int], None]
STAGE1_DIR = "confidence_stage1"
FINAL_CONFIDENCE_DIR = "confidence"
_STAGE1_METRICS = "stage1_metrics.json"
_STAGE1_CURVE = "stage1_curve.json"


@dataclass(frozen=True)
class RTAPResult:
    """What an R-TAP run produced.

    ``train``: the engine's result for stage 2 (final policy under ``train.final_model_dir``);
    ``confidence_metrics``: stage-1 ``confidence/*`` (``auroc``, ``ece``, data counts, ...);
    ``confidence_dir`` / ``confidence_stage1_dir``: C_phi after stage 2 / after stage 1 (load with
    :meth:`~rl_distill.rtap.confidence.ConfidenceGenerator.load`).
    """

    train: TrainResult
    confidence_metrics: dict[str, float]
    confidence_dir: Path
    confidence_stage1_dir: Path


def stage2_train_config(config: RTAPConfig) -> TrainConfig:
    """``config.train`` with validation capped at T cycles' worth of tokens when it names no budget itself."""
    train_cfg = config.train
    if train_cfg.validation.max_new_tokens is None:
        validation = dataclasses.replace(train_cfg.validation, max_new_tokens=config.trajectory_token_budget)
        train_cfg = dataclasses.replace(train_cfg, validation=validation)
    return train_cfg


def _stage1(policy: torch.nn.Module, tokenizer: Any, task: Task, questions: Sequence[Example],
            val_examples: Sequence[Example], config: RTAPConfig, stage1_dir: Path,
            log_fn: LogFn | None) -> tuple[ConfidenceGenerator, dict[str, float]]:
    metrics_file, curve_file = stage1_dir / _STAGE1_METRICS, stage1_dir / _STAGE1_CURVE
    if config.train.checkpoint.resume and metrics_file.exists():
        device = next(policy.parameters()).device
        generator = ConfidenceGenerator.load(stage1_dir, tokenizer, device=device)
        if log_fn is not None and curve_file.exists():  # the loading run's own MLflow run gets the loss curve too
            for point in json.loads(curve_file.read_text()):
                log_fn(point["metrics"], point["step"])
        return generator, json.loads(metrics_file.read_text())
    curve: list[dict[str, Any]] = []

    def _record(step_metrics: dict[str, float], step: int) -> None:
        curve.append({"step": step, "metrics": step_metrics})
        if log_fn is not None:
            log_fn(step_metrics, step)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.confidence.seed)
        generator, metrics = train_confidence_generator(policy, tokenizer, task, questions, val_examples,
                                                        config.confidence, config.train.rollout, log_fn=_record)
    generator.save(stage1_dir)
    curve_file.write_text(json.dumps(curve))
    metrics_file.write_text(json.dumps(metrics, indent=2))  # written last: marks stage 1 complete
    return generator, metrics


def train_rtap(*, policy: torch.nn.Module, tokenizer: Any, task: Task, train_examples: list[Example],
               val_examples: list[Example], config: RTAPConfig, log_fn: LogFn | None = None,
               output_dir: str | Path, progress: bool = True, confidence_log_fn: LogFn | None = None,
               reference: torch.nn.Module | None = None,
               split_examples: Sequence[Example] | None = None,
               stage1_dir: str | Path | None = None) -> RTAPResult:
    """Train ``policy`` in place with R-TAP (stage 1, then stage 2); see the module docstring.

    ``log_fn`` receives stage 2's metrics (``train/*``, ``rollout/*`` incl. ``rollout/r_increase`` ...,
    ``val/*``); ``confidence_log_fn`` receives stage 1's (``confidence/train_loss``, ``confidence/lr`` per C_phi
    step, then the held-out ``confidence/auroc``, ``confidence/ece``, ... once at the last step). ``reference``
    defaults to a frozen copy of the initial policy (the KL term, beta = 0.04). ``split_examples``: stage 1's
    questions when ``config.confidence.questions`` is ``train_examples`` (required then, unused otherwise).
    ``stage1_dir``: where stage 1's C_phi is kept (None: ``<output_dir>/confidence_stage1``). Runs that differ only
    in what stage 1 does not read (the training seed: stage 1 draws from ``confidence.seed``) may share one; with
    ``checkpoint.resume`` the later ones load the complete stage 1 the first one saved instead of repeating it.
    """
    if config.confidence.questions == "train_examples":
        if not split_examples:
            raise ValueError("confidence.questions='train_examples' draws stage 1's questions from the training "
                             "split, but no split_examples were given: pass the split, or set "
                             "confidence.questions: rl_prompts.")
        questions: Sequence[Example] = split_examples
    else:
        questions = train_examples
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if torch.cuda.is_available():
        policy.to("cuda")  # C_phi is built on the policy's device; accelerate would move the policy there anyway
    stage1_dir = output_dir / STAGE1_DIR if stage1_dir is None else Path(stage1_dir)
    steps_seen: list[int] = []

    def _confidence_log(metrics: dict[str, float], step: int) -> None:
        steps_seen.append(step)
        if confidence_log_fn is not None:
            confidence_log_fn(metrics, step)

    generator, confidence_metrics = _stage1(policy, tokenizer, task, questions, val_examples, config,
                                            stage1_dir, _confidence_log)
    if confidence_log_fn is not None:  # NaN (e.g. AUROC with one class held out) stays in the result only
        finite = {k: v for k, v in confidence_metrics.items() if math.isfinite(v)}
        confidence_log_fn(finite, (steps_seen[-1] + 1) if steps_seen else 0)

    engine = RecursiveRolloutEngine(task, answer_lookup(train_examples), max_cycles=config.cycles.max_cycles,
                                    stop_at_correct=config.cycles.stop_at_correct,
                                    sample_eos=config.cycles.sample_eos,
                                    force_cycles=config.cycles.force_cycles)
    reward_fn = RTAPRewardFn(engine, generator, config)
    stage2 = stage2_train_config(config)
    result = train(policy=policy, tokenizer=tokenizer, task=task, train_examples=train_examples,
                   val_examples=val_examples, config=stage2, reference=reference,
                   log_fn=log_fn, output_dir=output_dir, reward_fn=reward_fn, progress=progress,
                   rollout_engine=engine, label=f"rtap/{stage2.loss.name}", extra_state=reward_fn)
    final_dir = generator.save(output_dir / FINAL_CONFIDENCE_DIR)
    return RTAPResult(train=result, confidence_metrics=confidence_metrics, confidence_dir=final_dir,
                      confidence_stage1_dir=stage1_dir)
