"""``tuning`` pipeline (not in ``__default__``): ``kedro run --pipelines tuning``."""

from kedro.pipeline import Node, Pipeline

from rl_distill.pipelines.tuning.nodes import tune_rlad


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(tune_rlad,
             ["student_init_model", "selected_teacher_model", "rl_prompts", "val_examples", "tokenizer",
              "params:tuning", "params:distill.common", "params:distill.rlad"],
             ["best_rlad_params", "tuning_trials"], name="tune_rlad"),
    ])
