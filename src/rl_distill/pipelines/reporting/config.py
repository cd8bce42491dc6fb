"""The ``reporting`` parameter block as a typed config (``parameters_reporting.yml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rl_distill.evaluation.samples import GREEDY, SAMPLED
from rl_distill.evaluation.summary import DEFAULT_COMPARISON_METRICS
from rl_distill.known_methods import known_methods
from rl_distill.typed_config import ConfigError, check_choice, check_range, from_dict


@dataclass(frozen=True)
class ReportingParams:
    """What the comparison report shows.

    - ``comparison_metrics``: columns of the comparison table (``pass@k`` / ``mean@k`` = the largest k);
    - ``difficulty_metrics``: one per-difficulty table and one bar figure (with 95% CIs) each;
    - ``curve_keys`` / ``curve_models``: step metrics read from each model's training run and the models drawn
      (those evaluated, in this order; None = every registered method);
      ``smoothing`` (EMA weight in [0, 1)) applies to ``smooth_keys``;
    - ``length_decoding``: which samples the response-length figure uses (falls back to the other one);
    - ``difficulty_name``: x-axis label of the difficulty figures (None: named after the curated tasks, e.g.
      ``difficulty (K&K: number of people)``); ``digits``: decimals in the markdown.
    """

    title: str = "rl-distill: method comparison"
    comparison_metrics: tuple[str, ...] = DEFAULT_COMPARISON_METRICS
    difficulty_metrics: tuple[str, ...] = ("accuracy",)
    curve_keys: tuple[str, ...] = ("val/accuracy", "rollout/reward_mean")
    curve_models: tuple[str, ...] | None = None
    smoothing: float = 0.0
    smooth_keys: tuple[str, ...] = ("rollout/reward_mean",)
    length_decoding: str = SAMPLED
    difficulty_name: str | None = None
    digits: int = 3

    def __post_init__(self) -> None:
        for name in ("comparison_metrics", "difficulty_metrics", "curve_keys"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must list at least one name.")
        check_range("smoothing", self.smoothing, 0.0, 1.0, hi_open=True)
        check_choice("length_decoding", self.length_decoding, (SAMPLED, GREEDY))
        check_range("digits", self.digits, 0, 8)

    def curve_methods(self) -> tuple[str, ...]:
        """``curve_models``, or every registered method id when unset."""
        return self.curve_models if self.curve_models is not None else tuple(known_methods())


def load_params(block: Mapping[str, Any] | None, where: str = "parameters_reporting.yml:reporting"
                ) -> ReportingParams:
    """Validate the ``reporting`` block into :class:`ReportingParams` (raises ``ConfigError``)."""
    if isinstance(block, ReportingParams):  # already parsed when the Kedro context was created
        return block
    return from_dict(ReportingParams, block or {}, where=where)
