"""``rtap`` pipeline (namespace ``rtap``): student_init -> confidence generator (stage 1) -> R-TAP GRPO (stage 2)
-> ``rtap.student_model`` (data/06_models/rtap)."""

from kedro.pipeline import Node, Pipeline

from rl_distill.pipelines.rtap.nodes import train_rtap_student


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [Node(train_rtap_student,
              ["student_init_model", "rl_prompts", "val_examples", "tokenizer", "params:common", "params:rtap",
               "train_examples"],
              "student_model", name="train")],
        namespace="rtap",
        inputs={"student_init_model", "rl_prompts", "val_examples", "tokenizer", "train_examples"},
        parameters={"params:common": "params:distill.common", "params:rtap": "params:rtap"},
    )
