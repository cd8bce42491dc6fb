"""Training checkpoints: save and restore everything a run needs to continue bit-for-bit, through accelerate.

One job: what goes into a training checkpoint and how it comes back. Layout of ``<root>/step_000050/``:

- ``model/``: the policy as an HF directory (``save_pretrained``: safetensors + config + tokenizer), loadable by
  :func:`rl_distill.models.factory.load_model_dir` on its own;
- ``state/``: ``accelerator.save_state``: ``model.safetensors`` and ``optimizer.bin`` (accelerate handles FSDP /
  DeepSpeed sharding here). ``optimizer.bin`` is the one file in torch's zip format; accelerate loads it with
  ``torch.load(weights_only=True)``, which rebuilds tensors and plain containers only and refuses any other pickled
  object (tested: a crafted file that would run code is refused and runs nothing). accelerate's pickled RNG file is
  removed after the save, and the LR scheduler is not registered with accelerate (whose custom-state files are loaded
  with ``weights_only=False``): both are written by this module instead, without pickle:
- ``rng_state_<process>.json`` + ``rng_state_<process>.safetensors``: python's and numpy's Mersenne-Twister states
  (JSON) and torch's CPU / CUDA generator states (uint8 tensors), per process;
- ``trainer_state.json``: step, non-finite counters, early-stopping state, metric history, the config, and the LR
  scheduler's ``state_dict`` (numbers only);
- ``extra/`` (only for runs with a :class:`CheckpointedState`, e.g. R-TAP's confidence generator in stage 2): the
  state of a training component outside the policy that the next steps depend on, written by its own
  ``save_checkpoint`` and read back by ``load_checkpoint``;
- ``COMPLETE``: the manifest written last (:mod:`rl_distill.models.checkpoint`); the directory is renamed into place
  only after it exists, so a crash mid-write leaves a ``.tmp_*`` directory that is never loaded. Verification also
  refuses non-finite weights, and nothing is saved from a non-finite model or optimizer state.

The data order needs no state: it is a function of (seed, step) (:mod:`rl_distill.engine.sampler`).
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from accelerate.utils import DistributedType
from safetensors.torch import load_file, save_file

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
from rl_distill.models.finite import NonFiniteStateError, nonfinite_training_state

MODEL_DIR = "model"
STATE_DIR = "state"
TRAINER_STATE = "trainer_state.json"
ACCELERATE_RNG_PICKLE = "random_states_{}.pkl"  # accelerate's file (torch.save); replaced by rng_state_<i>.*
EXTRA_DIR = "extra"


class CheckpointedState(Protocol):
    """A training component with state of its own (beside the policy, optimizer and RNGs) that the checkpoint must
    carry for a resume to continue bit for bit. Written on the main process; restored on every process."""

    def save_checkpoint(self, directory: Path) -> None: ...

    def load_checkpoint(self, directory: Path) -> None: ...


class CheckpointLoadError(RuntimeError):
    """A checkpoint passed verification but its state could not be loaded (e.g. a tampered ``optimizer.bin``)."""


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
    # The tracking (MLflow) runs that logged this history, oldest first: a resume names the runs it continues.
    tracking_runs: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=dict)


def save_rng_state(directory: Path, process_index: int) -> None:
    """This process's python / numpy / torch (CPU and CUDA) generator states, as JSON and safetensors."""
    version, mt_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (the legacy global generator)
    payload = {"python": [version, list(mt_state), gauss],
               "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    (directory / f"rng_state_{process_index}.json").write_text(json.dumps(payload))
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"torch_cuda_{i}": t for i, t in enumerate(torch.cuda.get_rng_state_all())})
    save_file(tensors, str(directory / f"rng_state_{process_index}.safetensors"))


def load_rng_state(directory: Path, process_index: int) -> None:
    """Set every generator from :func:`save_rng_state`'s files."""
    payload = json.loads((directory / f"rng_state_{process_index}.json").read_text())
    version, mt_state, gauss = payload["python"]
    random.setstate((version, tuple(mt_state), gauss))
    kind, keys, pos, has_gauss, cached = payload["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    tensors = load_file(str(directory / f"rng_state_{process_index}.safetensors"))
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("torch_cuda_")),
                                       key=lambda k: int(k.rsplit("_", 1)[1]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def gathered_state_dict(accelerator: Any, model: Any) -> dict[str, Any] | None:
    """Full weights for ``save_pretrained`` when they are sharded (FSDP/DeepSpeed); None otherwise.

    Collective: every process must call it.
    """
    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return accelerator.get_state_dict(model)
    return None


def save_training_checkpoint(accelerator: Any, model: Any, optimizer: Any, scheduler: Any, tokenizer: Any,
                             root: Path, state: TrainerState, keep_last: int,
                             extra: CheckpointedState | None = None) -> Path:
    """Write ``root/step_<state.step>`` atomically, then keep only the newest ``keep_last``. Collective.

    Refuses (:class:`~rl_distill.models.finite.NonFiniteStateError`) to write a model or optimizer state holding
    NaN or inf: a checkpoint is by definition a good state to resume from.
    """
    bad = nonfinite_training_state(model, optimizer)
    if bad is not None:
        raise NonFiniteStateError(f"refusing to checkpoint step {state.step} under {root}: {bad} holds NaN or inf")
    target = root / step_dir_name(state.step)
    tmp = temp_dir_for(target)
    if accelerator.is_main_process:
        begin_atomic_dir(target)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / STATE_DIR))
    (tmp / STATE_DIR / ACCELERATE_RNG_PICKLE.format(accelerator.process_index)).unlink(missing_ok=True)
    save_rng_state(tmp / STATE_DIR, accelerator.process_index)
    full = gathered_state_dict(accelerator, model)
    if accelerator.is_main_process:
        save_hf_dir(accelerator.unwrap_model(model), tokenizer, tmp / MODEL_DIR, full)
        state.scheduler = scheduler.state_dict()
        (tmp / TRAINER_STATE).write_text(json.dumps(asdict(state), indent=1, sort_keys=True))
        if extra is not None:
            (tmp / EXTRA_DIR).mkdir()
            extra.save_checkpoint(tmp / EXTRA_DIR)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        commit_atomic_dir(tmp, target, meta={"step": state.step})
        prune_checkpoints(root, keep_last)
    accelerator.wait_for_everyone()
    return target


def restore_latest(accelerator: Any, root: Path, config: dict[str, Any], scheduler: Any,
                   extra: CheckpointedState | None = None) -> tuple[TrainerState, Path] | None:
    """Load the newest complete checkpoint under ``root`` into the prepared objects (and ``extra``); None when there
    is none.

    Partial, corrupt or non-finite checkpoints are skipped with a :class:`CheckpointWarning`. A config that differs
    from the checkpoint's is warned about (the run continues with the new config). A state that verifies but does
    not load (a file rewritten together with its manifest) raises :class:`CheckpointLoadError` naming it.
    """
    found = find_latest_checkpoint(root)
    if found is None:
        return None
    _, path = found
    try:
        accelerator.load_state(str(path / STATE_DIR))
        if extra is not None:  # before the RNGs: whatever randomness its loading draws is then reset
            if not (path / EXTRA_DIR).is_dir():
                raise FileNotFoundError(f"no {EXTRA_DIR}/ directory: the checkpoint holds no state for "
                                        f"{type(extra).__name__}")
            extra.load_checkpoint(path / EXTRA_DIR)
        load_rng_state(path / STATE_DIR, accelerator.process_index)
        raw = json.loads((path / TRAINER_STATE).read_text())
        state = TrainerState(**raw)
        scheduler.load_state_dict(state.scheduler)
    except Exception as exc:
        raise CheckpointLoadError(
            f"checkpoint {path} passed its checksums but cannot be loaded ({type(exc).__name__}: {exc}). It was "
            "written by another version or tampered with; move it away to resume from an older checkpoint."
        ) from exc
    changed = sorted(k for k in set(config) | set(state.config) if config.get(k) != state.config.get(k))
    if changed:
        warnings.warn(f"resuming {path} with a changed config (keys: {', '.join(changed)})", CheckpointWarning,
                      stacklevel=2)
    return state, path
