"""LoRA through ``peft``: wrap the policy, use the base (adapters off) as the reference, merge at the end.

One job: everything the trainer does differently when ``TrainConfig.lora`` is set (Hu et al. 2022, "LoRA: Low-Rank
Adaptation of Large Language Models": W = W0 + (alpha / r) B A, only A and B trained).

- :func:`wrap_lora` injects the adapters (``peft.get_peft_model``); only adapter weights require grad, so the
  optimizer (built from parameters that require grad) trains only them. Target names that match no module fail
  before training, listing the linear layers the model has.
- :class:`AdapterDisabled` is the reference policy pi_ref for a KL term: the same module with its adapters
  switched off (``disable_adapter``), i.e. exactly the starting weights, with no second copy of the model.
- Checkpoints: the accelerate state holds the full module state (base + adapter) so a resume is bit-identical;
  the checkpoint's ``model/`` directory is the adapter (``adapter_config.json`` + ``adapter_model.safetensors``,
  loadable with ``PeftModel.from_pretrained(base, dir)``).
- :func:`merged` returns the base with the adapters merged in (``merge_and_unload``): the final model directory is a
  plain HF model, so evaluation, teacher scoring and the next pipeline load it like any other.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from rl_distill.typed_config import ConfigError, check_range


@dataclass(frozen=True)
class LoraSettings:
    """``lora: {r, alpha, dropout, target_modules}``: rank, scale numerator (scale = alpha / r), dropout on the
    adapter input, and the module names (suffixes, as in peft) that get adapters."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")

    def __post_init__(self) -> None:
        check_range("lora.r", self.r, 1)
        check_range("lora.alpha", self.alpha, 0.0, lo_open=True)
        check_range("lora.dropout", self.dropout, 0.0, 1.0)
        if not self.target_modules:
            raise ConfigError("lora.target_modules is empty; name the linear layers to adapt, e.g. [q_proj, v_proj].")


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """The distinct last-component names of the model's ``nn.Linear`` modules (what ``target_modules`` matches)."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear)})


def check_targets(model: torch.nn.Module, settings: LoraSettings) -> None:
    """Every target name must match at least one module of ``model`` (peft would silently skip some)."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in settings.target_modules if t not in names]
    if missing:
        raise ConfigError(f"lora.target_modules: {missing} match no module of {type(model).__name__}; its linear "
                          f"layers are {linear_module_names(model)}. Use some of those.")


def wrap_lora(model: torch.nn.Module, settings: LoraSettings) -> Any:
    """``model`` with LoRA adapters (a ``peft.PeftModel``; the base's weights are frozen)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:  # pragma: no cover - peft is a dependency
        raise ConfigError("lora needs the `peft` package: pip install peft") from exc
    check_targets(model, settings)
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=list(settings.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def is_lora(model: Any) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "merge_and_unload")


class AdapterDisabled(torch.nn.Module):
    """The LoRA policy with its adapters switched off, in eval mode: the base model, pi_ref, sharing its weights.

    Holds the policy outside the module tree (no parameters of its own), so freezing or moving this view never
    touches the policy. Not thread-safe with a concurrent forward of the policy (the adapter switch is module
    state): the trainer scores it sequentially.
    """

    def __init__(self, policy: Any) -> None:
        super().__init__()
        self.__dict__["policy"] = policy  # not registered as a submodule

    @contextmanager
    def _base(self):
        was_training = self.policy.training
        self.policy.eval()
        try:
            with self.policy.disable_adapter():
                yield self.policy
        finally:
            self.policy.train(was_training)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with self._base() as base:
            return base(*args, **kwargs)

    def parameters(self, recurse: bool = True):  # the device/dtype probes of the scoring code look here
        return self.policy.parameters(recurse)

    def requires_grad_(self, requires_grad: bool = True) -> AdapterDisabled:
        return self  # the policy's parameters are not this view's to freeze

    def to(self, *args: Any, **kwargs: Any) -> AdapterDisabled:
        return self  # it lives where the policy lives


def merged(model: Any) -> torch.nn.Module:
    """The plain model with the adapters merged into the base weights (in place; the LoRA wrapper is dropped)."""
    return model.merge_and_unload()
