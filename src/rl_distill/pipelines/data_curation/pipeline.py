"""The ``data_curation`` pipeline: generate/load -> curate (polars) -> split -> statistics; tokenizer alongside.

Catalog outputs: ``raw_examples`` (01_raw) -> ``curated_examples`` (03_primary) -> ``train_examples``,
``val_examples``, ``test_examples`` (05_model_input), ``tokenizer`` (06_models), ``curation_stats`` (08_reporting).

Columns of the split frames: ``id``, ``task``, ``subset``, ``difficulty``, ``prompt`` (ends with a newline),
``trace`` (the reference completion, with "wait," self-corrections at ``self_correction_rate``: what teacher SFT
trains on), ``trace_clean`` (the same reasoning without corrections: for clean demonstrations), ``answer``
(canonical), ``prompt_tokens``, ``trace_tokens``, ``total_tokens`` (= both + <bos> + <eos>), ``has_correction``,
``question_key`` (normalised question, unique across splits), ``params`` (the task spec's params, JSON) and ``meta``
(per-example facts, JSON). Rows are grouped by (subset, difficulty): shuffle before training.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from rl_distill.pipelines.data_curation.nodes import (
    build_shared_tokenizer,
    curate_examples,
    generate_examples,
    split_examples,
    summarise_curation,
)

PARAMS = "params:data_curation"


def create_pipeline(**kwargs: object) -> Pipeline:
    return Pipeline([
        Node(generate_examples, PARAMS, ["raw_examples", "curation_bad_rows"], name="generate_examples"),
        Node(build_shared_tokenizer, PARAMS, "tokenizer", name="build_tokenizer"),
        Node(curate_examples, ["raw_examples", "tokenizer", PARAMS], ["curated_examples", "curation_drops"],
             name="curate_examples"),
        Node(split_examples, ["curated_examples", PARAMS], ["train_examples", "val_examples", "test_examples"],
             name="split_examples"),
        Node(summarise_curation,
             ["curation_drops", "curation_bad_rows", "train_examples", "val_examples", "test_examples", PARAMS],
             "curation_stats", name="summarise_curation"),
    ])
