"""``distill`` pipelines: one Kedro namespace per method id, all built from one template.

``kedro run --pipelines rlad`` (or grpo, kl_kd, offline_kd) runs one method (each method id is also a pipeline
package, so Kedro's ``find_pipelines`` registers it); ``distill`` runs all four. Each reads
the shared ``student_init_model``, ``selected_teacher_model``, ``rl_prompts``, ``val_examples`` and ``tokenizer``,
and writes ``<method>.student_model`` (data/06_models/<method>).
"""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from rl_distill.pipelines.distill.nodes import METHODS, distill_student, reject_sample_teacher

SHARED_INPUTS = {"student_init_model", "selected_teacher_model", "rl_prompts", "val_examples", "tokenizer"}


def _trainer_for(method: str):
    fn = partial(distill_student, method=method)
    update_wrapper(fn, distill_student)
    return fn


def method_template(method: str) -> Pipeline:
    """The template for one method; ``offline_kd`` adds the teacher reject-sampling node before training."""
    nodes = []
    train_data = "rl_prompts"
    if method == "offline_kd":
        nodes.append(Node(reject_sample_teacher,
                          ["selected_teacher_model", "rl_prompts", "tokenizer", "params:common", "params:method"],
                          "teacher_traces", name="reject_sample_teacher"))
        train_data = "teacher_traces"
    nodes.append(Node(_trainer_for(method),
                      ["student_init_model", "selected_teacher_model", train_data, "val_examples", "tokenizer",
                       "params:common", "params:method"],
                      "student_model", name="train"))
    return Pipeline(nodes, namespace=method, inputs=SHARED_INPUTS,
                    parameters={"params:common": "params:distill.common", "params:method": f"params:distill.{method}"})


def create_pipeline(**kwargs) -> Pipeline:
    """All four methods (registered as ``distill``); each is also registered alone by its own package
    (``pipelines/<method>/``), so ``kedro run --pipelines rlad`` finds it."""
    return sum((method_template(method) for method in METHODS), Pipeline([]))
