"""Turn a short training run into an Optuna objective whose value is the last validation report.

One job: adapt ``train_once(params, log_fn)`` (e.g. a closure over ``rl_distill.engine.trainer.train`` with
the
``rlad`` loss config overridden by :func:`~rl_distill.tuning.best.apply_best_params`, ``steps_per_trial``
steps and evaluation every ``eval_every``) into the ``(params, reporter) -> float`` objective
:func:`run_study` expects. The value is read from the validation metric stream only, so a trial can never
be scored on test data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rl_distill.tuning.study import ObjectiveFn, Reporter

LogFn = Callable[[Mapping[str, float], int], None]
TrainOnce = Callable[[dict[str, float], LogFn], object]


def training_objective(train_once: TrainOnce) -> ObjectiveFn:
    """Objective that runs ``train_once(params, reporter.log_fn)`` and returns the last reported validation
    value.

    ``train_once`` must evaluate at its last step (the engine's final evaluation) so the value is the
    trained model's validation accuracy. Pruning surfaces as ``optuna.TrialPruned`` raised from inside
    ``log_fn``.
    """

    def objective(params: dict[str, float], reporter: Reporter) -> float:
        train_once(dict(params), reporter.log_fn)
        if reporter.last_value is None:
            raise RuntimeError(
                f"trial {reporter.trial_number}: training logged no '{reporter.metric}'; make it evaluate "
                "on the validation split at least once (eval_every <= steps_per_trial) and at its last step."
            )
        return reporter.last_value

    return objective
