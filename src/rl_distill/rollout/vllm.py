"""The ``vllm`` rollout engine: sampling on a GPU with vLLM (the ``vllm`` extra), colocated with the trainer.

One job: sample response ids with a vLLM engine that holds a copy of the trainer's policy. ``vllm`` is imported only
when the engine first samples, so this module imports (and registers) on machines without it. The engine is built
lazily from a ``save_pretrained`` copy of the policy (architecture + tokenizer), and before every rollout
:meth:`VLLMRolloutEngine.sync_weights` pushes the trainer's current weights into it with the model's
``load_weights`` (HF parameter names; sharded FSDP2 tensors are gathered with ``full_tensor``). The sampler runs in
this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so that weights move GPU-to-GPU without pickling.

The old-policy log-probs are not vLLM's: :func:`rl_distill.rollout.base.finish_rollout` recomputes them with the
trainer's policy, so a numeric mismatch between the two kernels cannot bias the importance ratio.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rl_distill.rollout.base import (
    ROLLOUT_ENGINES,
    FinishedRows,
    RolloutConfig,
    RolloutEngine,
    pad_responses,
    pad_token_id,
)
from rl_distill.typed_config import check_range

_MODEL_PATHS = (
    ("llm_engine", "model_executor", "driver_worker", "worker", "model_runner", "model"),
    ("llm_engine", "model_executor", "driver_worker", "model_runner", "model"),
    ("llm_engine", "engine_core", "engine_core", "model_executor", "driver_worker", "worker", "model_runner", "model"),
)


@dataclass(frozen=True)
class VLLMOptions:
    """vLLM engine settings (``rollout.engine_options`` when ``rollout.engine: vllm``)."""

    gpu_memory_utilization: float = 0.3
    dtype: str = "auto"
    max_model_len: int | None = None
    enforce_eager: bool = False
    enable_prefix_caching: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("gpu_memory_utilization", self.gpu_memory_utilization, 0.0, 1.0, lo_open=True)


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "rollout.engine 'vllm' needs the vllm extra on a CUDA machine: pip install 'rl-distill[vllm]'; "
            "or use rollout.engine: hf"
        ) from exc
    return vllm


def _find_inner_model(llm: Any) -> Any:
    for path in _MODEL_PATHS:
        obj = llm
        try:
            for attr in path:
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        if hasattr(obj, "load_weights"):
            return obj
    raise RuntimeError(
        "could not reach the vLLM model to load weights into (tried "
        + ", ".join(".".join(p) for p in _MODEL_PATHS)
        + "); is VLLM_ENABLE_V1_MULTIPROCESSING=0 set before vllm starts?"
    )


def _full_state_dict(model: torch.nn.Module) -> dict[str, Tensor]:
    """HF-named weights, with FSDP2-sharded DTensors gathered (``full_tensor``) into plain tensors."""
    with torch.no_grad():
        return {name: t.full_tensor() if hasattr(t, "full_tensor") else t for name, t in model.state_dict().items()}


def _strip_left_padding(prompt_ids: Tensor, prompt_mask: Tensor) -> list[list[int]]:
    return [[i for i, m in zip(ids, mask) if m] for ids, mask in zip(prompt_ids.tolist(), prompt_mask.tolist())]


@ROLLOUT_ENGINES.register("vllm")
class VLLMRolloutEngine(RolloutEngine):
    """Samples with a colocated vLLM ``LLM``; weights are synced from the trainer before each rollout."""

    Options = VLLMOptions

    def __init__(self, options: VLLMOptions | None = None) -> None:
        super().__init__(options)
        self._llm: Any = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    def _ensure_llm(self, model: torch.nn.Module, tokenizer: Any) -> Any:
        if self._llm is not None:
            return self._llm
        if not torch.cuda.is_available():
            raise RuntimeError("rollout.engine 'vllm' needs a CUDA GPU; use rollout.engine: hf on CPU")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vllm = _import_vllm()
        self._workdir = tempfile.TemporaryDirectory(prefix="rl_distill_vllm_")
        path = Path(self._workdir.name)
        inner = getattr(model, "module", model)
        inner.save_pretrained(path, state_dict=_full_state_dict(inner))  # the current weights, unsharded
        tokenizer.save_pretrained(path)
        opts: VLLMOptions = self.options
        kwargs: dict[str, Any] = {
            "model": str(path), "tokenizer": str(path), "dtype": opts.dtype, "seed": opts.seed,
            "gpu_memory_utilization": opts.gpu_memory_utilization, "enforce_eager": opts.enforce_eager,
            "enable_prefix_caching": opts.enable_prefix_caching,
        }
        if opts.max_model_len is not None:
            kwargs["max_model_len"] = opts.max_model_len
        self._llm = vllm.LLM(**kwargs)
        return self._llm

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Copy the trainer's current weights into the vLLM model (no-op before the engine exists)."""
        if self._llm is None:
            return
        target = _find_inner_model(self._llm)
        inner = getattr(model, "module", model)
        with torch.no_grad():
            target.load_weights(_full_state_dict(inner).items())
        reset = getattr(self._llm, "reset_prefix_cache", None)
        if reset is not None:
            reset()  # cached KV blocks were computed with the old weights

    def sample(self, model: torch.nn.Module, tokenizer: Any, prompt_ids: Tensor, prompt_mask: Tensor,
               cfg: RolloutConfig, listener: FinishedRows | None = None) -> Tensor:
        # ``listener`` is not told of rows one by one: vLLM returns them all at once (they are scored afterwards).
        llm = self._ensure_llm(model, tokenizer)  # built from the current weights on first use
        vllm = _import_vllm()
        eos = tokenizer.eos_token_id
        params = vllm.SamplingParams(
            n=1, temperature=cfg.temperature, top_p=cfg.top_p if not cfg.greedy else 1.0,
            top_k=cfg.top_k if cfg.top_k and not cfg.greedy else -1, repetition_penalty=cfg.repetition_penalty,
            max_tokens=cfg.max_new_tokens, min_tokens=cfg.min_new_tokens, stop_token_ids=[eos],
            skip_special_tokens=False, detokenize=False,
        )
        prompts = [{"prompt_token_ids": ids} for ids in _strip_left_padding(prompt_ids, prompt_mask)]
        outputs = llm.generate(prompts, params, use_tqdm=False)
        rows = []
        for out in outputs:
            completion = out.outputs[0]
            ids = list(completion.token_ids)
            if completion.finish_reason == "stop" and (not ids or ids[-1] != eos):
                ids.append(eos)  # stopped on eos: make the eos explicit so the mask includes it
            rows.append(ids[: cfg.max_new_tokens])
        return pad_responses(rows, pad_token_id(tokenizer), prompt_ids.device)[0]

    def close(self) -> None:
        """Free the vLLM engine and its temporary model copy."""
        self._llm = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
