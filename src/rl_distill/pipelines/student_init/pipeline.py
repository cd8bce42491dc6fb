"""``student_init`` pipeline: curated traces -> short SFT of the small student -> data/06_models/student_init."""

from kedro.pipeline import Node, Pipeline

from rl_distill.pipelines.student_init.nodes import train_student_init


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(train_student_init, ["train_examples", "val_examples", "tokenizer", "params:student_init"],
             "student_init_model", name="train_student_init"),
    ])
