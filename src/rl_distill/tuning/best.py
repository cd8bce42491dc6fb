"""Apply a study's best parameters (the ``best_rlad_params`` record) to the configs of the final ``rlad``
run.

One job: when ``distill.rlad.use_tuned_params: true``, merge the tuned loss parameters (``alpha``,
``eps_high``) into the RLAD loss config and hand the optimizer ones (``lr``) to the training config,
re-checking their ranges because the record is read back from a JSON file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rl_distill.tuning.config import TUNABLE_PARAMS
from rl_distill.typed_config import ConfigError, check_range

# Keys of the best-params record that describe the study rather than a tuned parameter.
RECORD_KEYS = ("best_value", "trial_number", "study_name", "metric")


def _tuned(best: Mapping[str, Any], target: str) -> dict[str, float]:
    unknown = [k for k in best if k not in TUNABLE_PARAMS and k not in RECORD_KEYS]
    if unknown:
        raise ConfigError(f"best params record: unknown key {unknown[0]!r}; expected tuned parameters "
                          f"({', '.join(TUNABLE_PARAMS)}) and {', '.join(RECORD_KEYS)}.")
    out: dict[str, float] = {}
    for name, value in best.items():
        spec = TUNABLE_PARAMS.get(name)
        if spec is None or spec.target != target:
            continue
        check_range(f"best params record: {name}", float(value), spec.lo, spec.hi,
                    lo_open=spec.lo_open, hi_open=spec.hi_open)
        out[name] = float(value)
    return out


def apply_best_params(rlad_loss_cfg: Mapping[str, Any], best: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``rlad_loss_cfg`` with the tuned loss parameters of ``best`` (``alpha``, ``eps_high``)
    merged in.

    Parameters of other targets (``lr``) and the record's metadata are ignored here (see
    :func:`best_optim_overrides`).

    >>> apply_best_params({"alpha": 0.5, "eps_low": 0.2}, {"alpha": 0.3, "best_value": 0.9})
    {'alpha': 0.3, 'eps_low': 0.2}
    """
    return {**dict(rlad_loss_cfg), **_tuned(best, "loss")}


def best_optim_overrides(best: Mapping[str, Any]) -> dict[str, float]:
    """The tuned optimizer parameters of ``best`` (``{"lr": ...}`` when lr was tuned, else empty).

    >>> best_optim_overrides({"alpha": 0.3, "lr": 1e-4})
    {'lr': 0.0001}
    """
    return _tuned(best, "optim")
