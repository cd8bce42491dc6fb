"""``evaluation`` pipeline: every trained model on the same held-out test problems, then one tidy table.

One node per model (``evaluation.<model>``, e.g. ``evaluation.rlad``) reads its checkpoint from the catalog
(``data/06_models/<model>``) and the ``test_examples`` split, so ``kedro run --pipelines evaluation`` works off
the persisted checkpoints, and ``--nodes evaluation.rlad,evaluation.combine`` re-evaluates one model (the other
models' per-sample records are persisted under data/07_model_output/eval_samples/). ``evaluation.combine``
writes ``eval_samples``, ``eval_summary`` (+ csv) and ``eval_runs``.
"""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from rl_distill.pipelines.evaluation.config import evaluated_models
from rl_distill.pipelines.evaluation.nodes import combine_evaluations, evaluate_checkpoint

OUTPUTS = {"eval_samples", "eval_summary", "eval_summary_csv", "eval_runs"}


def _evaluator_for(model: str):
    fn = partial(evaluate_checkpoint, model_name=model)
    update_wrapper(fn, evaluate_checkpoint)
    return fn


def create_pipeline(**kwargs) -> Pipeline:
    """One evaluation node per model of :func:`evaluated_models`, then the combine node."""
    models = evaluated_models()
    nodes = [Node(_evaluator_for(model), [dataset, "test_examples", "tokenizer", "params:evaluation"],
                  [f"{model}_samples", f"{model}_run"], name=model)
             for model, dataset in models.items()]
    nodes.append(Node(combine_evaluations,
                      ["params:evaluation", *[f"{m}_samples" for m in models], *[f"{m}_run" for m in models]],
                      ["eval_samples", "eval_summary", "eval_summary_csv", "eval_runs"], name="combine"))
    return Pipeline(nodes, namespace="evaluation", inputs={*models.values(), "test_examples", "tokenizer"},
                    outputs=OUTPUTS, parameters={"params:evaluation"})
