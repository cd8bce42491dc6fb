"""``benchmark`` pipeline (not in ``__default__``): ``kedro run --pipelines benchmark`` after a default run.

One namespace per registered distill method and R-TAP (``benchmark.<id>``): its training data (as in ``distill``), one
training per seed of ``benchmark.seeds``, their evaluation on ``test_examples``; then ``benchmark.report``
(table + markdown + learning curves with a band over seeds, data/08_reporting/benchmark*).
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from rl_distill.core.methods import METHODS
from rl_distill.known_methods import distill_methods, known_methods
from rl_distill.pipelines.benchmark.nodes import evaluate_seeds, report, train_rtap_seeds, train_seeds
from rl_distill.pipelines.distill.pipeline import SHARED_INPUTS, TRAIN_DATA, bound_to_method


def method_benchmark(method: str) -> Pipeline:
    spec = METHODS.get(method)
    nodes, train_data = TRAIN_DATA.get(spec.trainer)(spec)
    tuned = f"best_{method}_params"
    nodes += [
        Node(bound_to_method(train_seeds, method),
             ["student_init_model", "selected_teacher_model", train_data, "val_examples", "tokenizer",
              "params:common", "params:method", tuned, "params:benchmark"], "models", name="train_seeds"),
        Node(bound_to_method(evaluate_seeds, method), ["models", "test_examples", "tokenizer", "params:evaluation"],
             "samples",
             name="evaluate_seeds"),
    ]
    return Pipeline(nodes, namespace=f"benchmark.{method}", inputs={*SHARED_INPUTS, tuned, "test_examples"},
                    parameters={"params:common": "params:distill.common", "params:method": f"params:distill.{method}",
                                "params:benchmark": "params:benchmark", "params:evaluation": "params:evaluation"})


def rtap_benchmark(method: str) -> Pipeline:
    """An ``rtap``-trainer method per seed: its own trainer (confidence generator, then recursive think-answer GRPO)
    on the RL prompts, configured by its own block (``params:<id>``), as in its pipeline."""
    nodes = [
        Node(bound_to_method(train_rtap_seeds, method),
             ["student_init_model", "rl_prompts", "val_examples", "tokenizer", "params:common", "params:method",
              "params:benchmark", "train_examples"], "models", name="train_seeds"),
        Node(bound_to_method(evaluate_seeds, method), ["models", "test_examples", "tokenizer", "params:evaluation"],
             "samples",
             name="evaluate_seeds"),
    ]
    return Pipeline(nodes, namespace=f"benchmark.{method}",
                    inputs={"student_init_model", "rl_prompts", "val_examples", "tokenizer", "test_examples",
                            "train_examples"},
                    parameters={"params:common": "params:distill.common", "params:method": f"params:{method}",
                                "params:benchmark": "params:benchmark", "params:evaluation": "params:evaluation"})


def rtap_methods() -> list[str]:
    """The registered methods trained by the R-TAP trainer (their own pipeline, not the distill template)."""
    return [name for name, spec in known_methods().items() if spec.trainer == "rtap"]


def benchmarked_methods() -> list[str]:
    """Every registered distill method, then the R-TAP-trainer ones."""
    return [*distill_methods(), *rtap_methods()]


def create_pipeline(**kwargs) -> Pipeline:
    methods = benchmarked_methods()
    per_method = sum((method_benchmark(m) for m in distill_methods()),
                     sum((rtap_benchmark(m) for m in rtap_methods()), Pipeline([])))
    final = Pipeline([Node(report, ["params:benchmark", "eval_samples",
                                    *[f"benchmark.{m}.samples" for m in methods],
                                    *[f"benchmark.{m}.models" for m in methods]],
                           ["benchmark_table", "benchmark_report_md", "benchmark_figures"], name="benchmark.report")])
    return per_method + final
