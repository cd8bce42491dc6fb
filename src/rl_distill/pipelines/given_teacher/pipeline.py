"""``given_teacher`` pipeline (in ``__default__``): the teacher a run distils from -> data/06_models/teacher.

The shipped teacher (``teacher.shipped``, checked against its provenance) when set, else the teacher trained here
from ``parameters_teacher.yml``. ``kedro run --pipelines teacher`` always retrains (and is not in ``__default__``).
"""

from kedro.pipeline import Node, Pipeline

from rl_distill.pipelines.teacher.nodes import given_teacher


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(given_teacher, ["train_examples", "val_examples", "tokenizer", "params:teacher", "params:data_curation"],
             "teacher_model", name="given_teacher"),
    ])
