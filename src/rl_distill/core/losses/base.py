"""What every policy loss is: the :class:`PolicyLoss` interface, the :data:`POLICY_LOSSES` registry, the builder.

One job: select a loss by registered name and validate its configuration through the loss's own frozen config
dataclass (unknown keys and out-of-range values raise :class:`~rl_distill.typed_config.ConfigError` at
construction, naming the key or value and the valid choices), so that the engine only ever does::

    loss_fn = build_policy_loss("rlad", {"alpha": 0.5})
    out = loss_fn(batch)          # PolicyBatch -> LossOutput(loss, metrics)
    out.loss.backward()
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor

from rl_distill.core.kl import kl_estimate
from rl_distill.core.types import LossOutput, PolicyBatch
from rl_distill.registry import Registry
from rl_distill.typed_config import ConfigError, from_dict


class PolicyLoss(abc.ABC):
    """A callable ``(PolicyBatch) -> LossOutput`` configured by a frozen dataclass.

    Class-level: ``name`` (the registry key), ``config_cls``, ``needs_teacher`` (reads ``teacher_logprobs``).
    Instance-level, because they depend on the config: ``needs_ref`` (``beta > 0``: reads ``ref_logprobs``) and
    ``needs_logits`` (full-vocabulary KL: reads ``student_logits`` and ``teacher_logits``).
    """

    name: ClassVar[str]
    config_cls: ClassVar[type]
    needs_teacher: ClassVar[bool] = False

    def __init__(self, config: Any = None) -> None:
        if config is None:
            config = self.config_cls()
        elif isinstance(config, Mapping):
            config = from_dict(self.config_cls, config, where=f"policy loss '{self.name}'")
        elif not isinstance(config, self.config_cls):
            raise ConfigError(f"policy loss '{self.name}' expects a mapping or a {self.config_cls.__name__}, "
                              f"got {type(config).__name__}.")
        self.config = config

    @property
    def needs_ref(self) -> bool:
        return float(getattr(self.config, "beta", 0.0)) > 0.0

    @property
    def needs_logits(self) -> bool:
        return False

    @abc.abstractmethod
    def __call__(self, batch: PolicyBatch) -> LossOutput:
        """The scalar loss and its detached metrics for one batch."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


POLICY_LOSSES: Registry[type[PolicyLoss]] = Registry("policy loss")


def build_policy_loss(name: str, config: Mapping[str, Any] | Any | None = None) -> PolicyLoss:
    """The loss registered as ``name`` ("grpo", "kl_kd", "rlad", "sft"), configured from ``config``.

    ``config`` is a mapping (validated: unknown keys -> ConfigError), an instance of the loss's config dataclass, or
    None for the defaults. An unknown ``name`` raises :class:`~rl_distill.registry.UnknownNameError` listing the valid
    names.
    """
    return POLICY_LOSSES.get(name)(config)


def masked_kl(logprobs_p: Tensor, logprobs_q: Tensor, mask: Tensor, estimator: str) -> Tensor:
    """Per-token KL(p || q) estimate [N, T] with padding zeroed *before* the estimator.

    Zeroing first (``torch.where``) means garbage log-probs at padded positions (even -inf) can produce neither a
    NaN value nor, through e.g. k2's ``d * grad``, a NaN gradient.
    """
    zero = logprobs_p.new_zeros(())
    return kl_estimate(logprobs_p.where(mask, zero), logprobs_q.where(mask, zero), estimator)
