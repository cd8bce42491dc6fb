"""``teacher_scoring`` pipeline: rank teachers, score the selected one and the student on the RL prompt pool, and
filter that pool into ``rl_prompts``."""

from kedro.pipeline import Node, Pipeline

from rl_distill.pipelines.teacher_scoring.nodes import score_teachers


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(score_teachers,
             ["teacher_model", "student_init_model", "train_examples", "val_examples", "tokenizer",
              "params:teacher_scoring"],
             ["teacher_report", "scored_prompts", "rl_prompts", "selected_teacher_model"],
             name="score_teachers"),
    ])
