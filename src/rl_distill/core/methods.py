"""The method registry: a distillation method is one registered :class:`MethodSpec` (architecture principle 2).

One job: say what a method *is* to the rest of the project, so that the Kedro namespaces, the evaluation and report
lists, the MLflow tags, the tuning space and the tests' parametrisation all derive from here plus the YAML::

    @POLICY_LOSSES.register("rlad")
    class RLADLoss(GRPOLoss): ...

    register_method(MethodSpec("rlad", trainer="rl", loss="rlad", needs_teacher=True, tag_params=("alpha",),
                               tunable=("alpha", "eps_high"), summary="..."))

A spec sits beside its loss (``core/losses/<id>.py``; R-TAP's in ``rtap/``). Adding a method is that module plus
one block ``distill.<id>`` in ``conf/base/parameters_distill.yml``: nothing else names it.

Trainer kinds (:data:`TRAINERS`): ``rl`` = one RL step per update through the shared engine with the registered
policy loss; ``sft`` = supervised fine-tuning on reject-sampled, verified teacher samples (method.md section 4);
``rtap`` = R-TAP's own two-stage pipeline (``pipelines/rtap``). ``rl`` and ``sft`` methods are namespaces of the one
``distill`` template.
"""

from __future__ import annotations

from dataclasses import dataclass

from rl_distill.registry import Registry
from rl_distill.typed_config import ConfigError

TRAINERS = ("rl", "sft", "rtap")
# Trainer kinds built by the ``distill`` template (one Kedro namespace each, ``distill.<id>`` parameter block).
DISTILL_TRAINERS = ("rl", "sft")


@dataclass(frozen=True)
class MethodSpec:
    """What the project needs to know about one method.

    Attributes:
        name: the method id: registry key = YAML block = Kedro namespace = MLflow run name.
        trainer: ``rl`` | ``sft`` | ``rtap`` (see the module docstring).
        loss: the registered policy loss it trains with (``sft`` for supervised methods).
        needs_teacher: the training reads the teacher (its log-probs, or its samples for ``sft``). A reference
            model is loaded when the configured loss asks for one (``beta > 0``), never by the method alone.
        tag_params: loss-config keys logged as MLflow run tags (e.g. ``alpha``); every trained model's run carries
            the union of all methods' tag keys, ``n/a`` where a method has no such key, so the MLflow table lines up.
        tunable: loss-config keys the tuning pipeline may search for this method (``lr`` is always tunable).
        summary: one line for the README-style method table of the report.
    """

    name: str
    trainer: str
    loss: str
    needs_teacher: bool
    tag_params: tuple[str, ...] = ()
    tunable: tuple[str, ...] = ()
    summary: str = ""

    def __post_init__(self) -> None:
        if self.trainer not in TRAINERS:
            raise ConfigError(f"method '{self.name}': trainer={self.trainer!r} is not valid; "
                              f"valid trainers: {', '.join(TRAINERS)}.")
        if not self.name.isidentifier():
            raise ConfigError(f"method id {self.name!r} must be a Python identifier (it is a Kedro namespace).")

    @property
    def is_distill(self) -> bool:
        """Built by the ``distill`` template (``rl`` / ``sft``) rather than a pipeline of its own."""
        return self.trainer in DISTILL_TRAINERS


METHODS: Registry[MethodSpec] = Registry("method")


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to :data:`METHODS` under ``spec.name`` (a second registration of one id raises)."""
    return METHODS.register(spec.name)(spec)
