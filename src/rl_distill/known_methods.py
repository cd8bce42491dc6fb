"""Every method the project knows, by id: the populated :data:`~rl_distill.core.methods.METHODS` registry.

One job: import the modules that register method specs (every module of :mod:`rl_distill.core.losses`, discovered,
and :mod:`rl_distill.rtap`) and answer "which methods are there" for pipelines, evaluation, reporting, tracking and
tests. No other module keeps a list of method names.
"""

from __future__ import annotations

from rl_distill.core.methods import METHODS, MethodSpec


def known_methods() -> dict[str, MethodSpec]:
    """``{id: spec}`` of every registered method, in sorted id order."""
    import rl_distill.core.losses  # noqa: F401  (registers the loss-backed methods)
    import rl_distill.rtap  # noqa: F401  (registers rtap)

    return {name: METHODS.get(name) for name in METHODS}


def distill_methods() -> dict[str, MethodSpec]:
    """The methods built by the ``distill`` template (trainer ``rl`` or ``sft``), one namespace each."""
    return {name: spec for name, spec in known_methods().items() if spec.is_distill}


def run_tag_keys() -> tuple[str, ...]:
    """The union of every method's ``tag_params``: tags every trained model's MLflow run carries (``n/a`` if unset)."""
    return tuple(sorted({key for spec in known_methods().values() for key in spec.tag_params}))
