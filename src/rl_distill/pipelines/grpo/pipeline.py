"""``grpo``: one distillation method, the ``distill`` template instantiated in its own Kedro namespace."""

from kedro.pipeline import Pipeline

from rl_distill.pipelines.distill.pipeline import method_template


def create_pipeline(**kwargs) -> Pipeline:
    return method_template("grpo")
