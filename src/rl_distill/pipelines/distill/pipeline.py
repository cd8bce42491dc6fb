"""``distill`` pipelines: one Kedro namespace per registered ``rl`` / ``sft`` method, all from one template.

``kedro run --pipelines rlad`` (or any method id) runs one method; ``distill`` runs them all (the pipeline registry
registers each method under its id). Each reads the shared ``student_init_model``, ``selected_teacher_model``,
``rl_prompts``, ``val_examples``, ``tokenizer`` and its ``best_<id>_params`` (the tuning study's record, ``None``
until one ran), and writes ``<id>.student_model`` (data/06_models/<id>). An ``sft`` method adds the teacher
reject-sampling node before training.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from rl_distill.core.methods import METHODS, MethodSpec
from rl_distill.known_methods import distill_methods
from rl_distill.pipelines.distill.nodes import distill_student, reject_sample_teacher
from rl_distill.registry import Registry

SHARED_INPUTS = {"student_init_model", "selected_teacher_model", "rl_prompts", "val_examples", "tokenizer"}
# Per trainer kind: the nodes that produce the method's training data, and that data's dataset name.
TrainData = Callable[[MethodSpec], tuple[list[Node], str]]
TRAIN_DATA: Registry[TrainData] = Registry("distill trainer kind")


def bound_to_method(fn, method: str):
    """``fn`` with ``method=`` bound, keeping its name and docstring (Kedro names nodes after the function)."""
    bound = partial(fn, method=method)
    update_wrapper(bound, fn)
    return bound


@TRAIN_DATA.register("rl")
def _rl_data(spec: MethodSpec) -> tuple[list[Node], str]:
    return [], "rl_prompts"  # RL trains on the filtered prompts themselves


@TRAIN_DATA.register("sft")
def _sft_data(spec: MethodSpec) -> tuple[list[Node], str]:
    node = Node(bound_to_method(reject_sample_teacher, spec.name),
                ["selected_teacher_model", "rl_prompts", "tokenizer", "params:common", "params:method"],
                "teacher_traces", name="reject_sample_teacher")
    return [node], "teacher_traces"


def method_template(method: str) -> Pipeline:
    """The namespaced pipeline of one registered distill method."""
    spec = METHODS.get(method)
    nodes, train_data = TRAIN_DATA.get(spec.trainer)(spec)
    tuned = f"best_{method}_params"
    nodes.append(Node(bound_to_method(distill_student, method),
                      ["student_init_model", "selected_teacher_model", train_data, "val_examples", "tokenizer",
                       "params:common", "params:method", tuned],
                      "student_model", name="train"))
    return Pipeline(nodes, namespace=method, inputs={*SHARED_INPUTS, tuned},
                    parameters={"params:common": "params:distill.common", "params:method": f"params:distill.{method}"})


def create_pipeline(**kwargs) -> Pipeline:
    """Every registered distill method (registered as ``distill``; each also under its own id)."""
    return sum((method_template(method) for method in distill_methods()), Pipeline([]))
