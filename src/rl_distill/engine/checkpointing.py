"""Training checkpoints: save and restore everything a run needs to continue bit-for-bit, through accelerate.

One job: what goes into a training checkpoint and how it comes back. Layout of ``<root>/step_000050/``:

- ``model/``: the policy as an HF directory (``save_pretrained``: safetensors + config + tokenizer), loadable by
  :func:`rl_distill.models.factory.load_model_dir` on its own;
- ``state/``: ``accelerator.save_state`` (model weights, optimizer, the LR scheduler registered for checkpointing,
  per-process RNG states: python, numpy, torch, cuda); accelerate handles FSDP/DeepSpeed sharding here;
- ``trainer_state.json``: step, non-finite counters, early-stopping state, metric history, the config;
- ``COMPLETE``: the manifest written last (:mod:`rl_distill.models.checkpoint`); the directory is renamed into place
  only after it exists, so a crash mid-write leaves a ``.tmp_*`` directory that is never loaded.

The data order needs no state: it is a function of (seed, step) (:mod:`rl_distill.engine.sampler`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from accelerate.utils import DistributedType

from rl_distill.models.checkpoint import (
    CheckpointWarning,
    begin_atomic_dir,
    commit_atomic_dir,
    find_latest_checkpoint,
    prune_checkpoints,
    save_hf_dir,
    step_dir_name,
    temp_dir_for,
)

MODEL_DIR = "model"
STATE_DIR = "state"
TRAINER_STATE = "trainer_state.json"


@dataclass
class TrainerState:
    """The loop's own counters (everything else lives in the accelerate state)."""

    step: int = 0
    nonfinite_total: int = 0
    nonfinite_consecutive: int = 0
    best_val: float | None = None
    vals_since_best: int = 0
    stopped_early: bool = False
    val_accuracy: float | None = None
    history: dict[str, list[list[float]]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def gathered_state_dict(accelerator: Any, model: Any) -> dict[str, Any] | None:
    """Full weights for ``save_pretrained`` when they are sharded (FSDP/DeepSpeed); None otherwise.

    Collective: every process must call it.
    """
    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return accelerator.get_state_dict(model)
    return None


def save_training_checkpoint(accelerator: Any, model: Any, tokenizer: Any, root: Path, state: TrainerState,
                             keep_last: int) -> Path:
    """Write ``root/step_<state.step>`` atomically, then keep only the newest ``keep_last``. Collective."""
    target = root / step_dir_name(state.step)
    tmp = temp_dir_for(target)
    if accelerator.is_main_process:
        begin_atomic_dir(target)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / STATE_DIR))
    full = gathered_state_dict(accelerator, model)
    if accelerator.is_main_process:
        save_hf_dir(accelerator.unwrap_model(model), tokenizer, tmp / MODEL_DIR, full)
        (tmp / TRAINER_STATE).write_text(json.dumps(asdict(state), indent=1, sort_keys=True))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        commit_atomic_dir(tmp, target, meta={"step": state.step})
        prune_checkpoints(root, keep_last)
    accelerator.wait_for_everyone()
    return target


def restore_latest(accelerator: Any, root: Path, config: dict[str, Any]) -> tuple[TrainerState, Path] | None:
    """Load the newest complete checkpoint under ``root`` into the prepared objects; None when there is none.

    Partial or corrupt checkpoints are skipped with a :class:`CheckpointWarning`. A config that differs from the
    checkpoint's is warned about (the run continues with the new config).
    """
    found = find_latest_checkpoint(root)
    if found is None:
        return None
    _, path = found
    accelerator.load_state(str(path / STATE_DIR))
    raw = json.loads((path / TRAINER_STATE).read_text())
    state = TrainerState(**raw)
    changed = sorted(k for k in set(config) | set(state.config) if config.get(k) != state.config.get(k))
    if changed:
        warnings.warn(f"resuming {path} with a changed config (keys: {', '.join(changed)})", CheckpointWarning,
                      stacklevel=2)
    return state, path
