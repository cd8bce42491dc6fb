"""``teacher`` pipeline: curated traces -> SFT -> GRPO -> data/06_models/teacher."""

from kedro.pipeline import Node, Pipeline

from rl_distill.pipelines.teacher.nodes import train_teacher


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(train_teacher, ["train_examples", "val_examples", "tokenizer", "params:teacher"], "teacher_model",
             name="train_teacher"),
    ])
