"""One method's parameter block (``distill.<id>``) and the training config it yields over ``distill.common``.

One job: turn ``distill.common`` + ``distill.<id>`` into the method's frozen :class:`~rl_distill.engine.config.
TrainConfig`, driven by its registered :class:`~rl_distill.core.methods.MethodSpec` (no branch on a method id):

- ``loss``: ``{name, config}``; ``name`` defaults to the spec's loss and, if given, must be it (one id per method);
- ``train``: overrides of ``distill.common`` for this method only (e.g. its learning rate);
- ``sample``: how ``sft`` methods draw their teacher samples (``samples_per_prompt``, ``temperature``);
- ``use_tuned_params``: take the tuning study's best parameters (the ``best_<id>_params`` dataset) on top.

Errors name the right block: a typo in ``distill.common`` is reported under ``distill.common``, one in a method's
block under ``distill.<id>``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rl_distill.core.methods import MethodSpec
from rl_distill.engine.config import TrainConfig
from rl_distill.typed_config import ConfigError, check_range, from_dict


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, recursively for nested mappings.

    >>> deep_merge({"a": 1, "o": {"lr": 1, "b": 2}}, {"o": {"lr": 3}})
    {'a': 1, 'o': {'lr': 3, 'b': 2}}
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class TeacherSampling:
    """How an ``sft`` method samples the teacher: ``samples_per_prompt`` samples per RL prompt at ``temperature``,
    ``batch_size`` prompts per ``generate`` call; only verified-correct, distinct samples are kept."""

    samples_per_prompt: int = 4
    temperature: float = 1.0
    batch_size: int = 32

    def __post_init__(self) -> None:
        check_range("samples_per_prompt", self.samples_per_prompt, 1)
        check_range("temperature", self.temperature, 0.0, lo_open=True)
        check_range("batch_size", self.batch_size, 1)


@dataclass(frozen=True)
class MethodParams:
    """The ``distill.<id>`` block (see the module docstring)."""

    loss: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    sample: TeacherSampling = field(default_factory=TeacherSampling)
    use_tuned_params: bool = False


@dataclass(frozen=True)
class MethodPlan:
    """A method ready to train: its spec, its parsed block and its training config."""

    spec: MethodSpec
    params: MethodParams
    train: TrainConfig
    raw_train: dict[str, Any] = field(repr=False)  # the block before typing (tuned values merge here)

    def tag_values(self, keys: tuple[str, ...]) -> dict[str, Any]:
        """``{key: loss-config value}`` for each run-tag key (the config's default if unset; ``n/a`` where this
        method's loss has no such key)."""
        loss_cfg = self.train.loss.typed
        return {key: getattr(loss_cfg, key, "n/a") if key in self.spec.tag_params else "n/a" for key in keys}


def method_train_dict(spec: MethodSpec, common: Mapping[str, Any], params: MethodParams,
                      where: str) -> dict[str, Any]:
    """The raw training block of ``spec``: ``common`` with the method's ``train`` and ``loss`` laid on top."""
    name = params.loss.get("name", spec.loss)
    if name != spec.loss:
        raise ConfigError(f"{where}.loss.name must be '{spec.loss}' (the loss method '{spec.name}' is registered "
                          f"with), got {name!r}; drop the key or fix it.")
    unknown = sorted(set(params.loss) - {"name", "config"})
    if unknown:
        raise ConfigError(f"{where}.loss: unknown key '{unknown[0]}'. Valid keys: name, config.")
    merged = deep_merge(common, params.train)
    merged["loss"] = {"name": spec.loss, "config": dict(params.loss.get("config") or {})}
    return merged


def plan_method(spec: MethodSpec, common: Mapping[str, Any], block: Mapping[str, Any] | MethodPlan, where: str,
                tuned: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> MethodPlan:
    """Parse ``block`` (``distill.<id>``, named ``where`` in errors) over ``common`` into a :class:`MethodPlan`.

    ``block`` may already be the plan (parsed once when the Kedro context was created): it is returned as is.
    ``tuned`` maps a raw training block to the one with the study's best parameters merged in; it is applied
    (and the result typed) only when the block says ``use_tuned_params: true``.
    """
    plan = block if isinstance(block, MethodPlan) else None
    if plan is None:
        params = from_dict(MethodParams, dict(block or {}), where=where)
        train = method_train_dict(spec, common, params, where)
        plan = MethodPlan(spec, params, from_dict(TrainConfig, train, where=where), train)
    if plan.params.use_tuned_params and tuned is not None:
        train = tuned(plan.raw_train)
        plan = MethodPlan(spec, plan.params, from_dict(TrainConfig, train, where=where), train)
    return plan
