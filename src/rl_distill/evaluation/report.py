"""The markdown comparison report: the configuration it was made from, the tables, the figures.

One job: assemble text. A reader of ``data/08_reporting/comparison_table.md`` (or of the parent MLflow run's
``reporting/comparison_table.md``) must be able to tell which models, step budgets and seeds produced the
numbers, so the report opens with them, read from the run's parameters (``parameters_*.yml`` after the
environment's overrides); a block absent from the parameters is reported as absent, not guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from rl_distill.evaluation.summary import comparison_table, difficulty_table, to_markdown
from rl_distill.known_methods import known_methods


def lookup(params: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``params["a"]["b"]`` for ``"a.b"``, ``default`` when any level is missing.

    >>> lookup({"distill": {"common": {"seed": 3}}}, "distill.common.seed"), lookup({}, "teacher.sft", "-")
    (3, '-')
    """
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def compact(value: Any) -> str:
    """One-line rendering of a (nested) parameter value for the report.

    >>> compact({"family": "llama", "hidden_size": 32, "rollout": {"group_size": 4}})
    'family=llama, hidden_size=32, rollout={group_size=4}'
    """
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={'{' + compact(v) + '}' if isinstance(v, Mapping) else compact(v)}"
                         for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    return str(value)


def _model_line(params: Mapping[str, Any], block: str) -> str:
    init_from = lookup(params, f"{block}.init_from")
    if init_from:
        return f"loaded from `{init_from}` (`{block}.init_from`)"
    model = lookup(params, f"{block}.model")
    return f"built from config: {compact(model)}" if model else "not in the parameters"


def _steps(params: Mapping[str, Any], block: str) -> str:
    steps, seed = lookup(params, f"{block}.total_steps", "?"), lookup(params, f"{block}.seed", "?")
    return f"{steps} steps (seed {seed})"


def configuration_lines(params: Mapping[str, Any]) -> list[str]:
    """Bullet lines: data, teacher, student, distillation budget and seeds, per-method settings, evaluation."""
    lines = []
    tasks = lookup(params, "data_curation.tasks", [])
    task_text = "; ".join(f"{t.get('subset') or t.get('name')} difficulties {t.get('difficulties')}"
                          for t in tasks if isinstance(t, Mapping)) or "not in the parameters"
    lines.append(f"- **Data**: {task_text}; split seed {lookup(params, 'data_curation.seed', '?')}")
    lines.append(f"- **Teacher**: {_model_line(params, 'teacher')}; SFT {_steps(params, 'teacher.sft')}, "
                 f"then GRPO {_steps(params, 'teacher.grpo')}")
    lines.append(f"- **Student**: {_model_line(params, 'student_init')}; warm start SFT "
                 f"{_steps(params, 'student_init.sft')}")
    common = lookup(params, "distill.common", {}) or {}
    lines.append(
        f"- **Distillation** (`distill.common`, shared by every method): seed {common.get('seed', '?')}, "
        f"{common.get('total_steps', '?')} steps x {common.get('prompts_per_step', '?')} prompts x "
        f"G={lookup(common, 'rollout.group_size', '?')} samples, "
        f"max_new_tokens {lookup(common, 'rollout.max_new_tokens', '?')}, lr {lookup(common, 'optimizer.lr', '?')}")
    specs = known_methods()
    for method, block in (lookup(params, "distill", {}) or {}).items():
        if method != "common" and isinstance(block, Mapping):
            summary = f" ({specs[method].summary})" if method in specs and specs[method].summary else ""
            lines.append(f"  - `{method}`{summary}: {compact(block) or 'defaults'}")
    lines += _evaluation_lines(lookup(params, "evaluation"))
    return lines


def _evaluation_lines(block: Mapping[str, Any] | None) -> list[str]:
    """The evaluation settings as run: the typed config, so defaults not written in YAML are shown too."""
    from rl_distill.pipelines.evaluation.config import load_params

    if block is None:
        return ["- **Evaluation**: not in the parameters"]
    cfg = load_params(block)
    dec = cfg.decoding
    lines = [f"- **Evaluation**: {dec.num_samples} samples per problem at temperature {dec.temperature} / top-p "
             f"{dec.top_p}{' + 1 greedy' if dec.greedy else ''}, max_new_tokens {dec.max_new_tokens}, pass@k for "
             f"k in {list(cfg.ks)}, test problems capped at {cfg.max_test_examples} (subsample seed "
             f"{cfg.subsample_seed}), sampling seed {dec.seed}, bootstrap {cfg.bootstrap.n_resamples} resamples "
             f"(seed {cfg.bootstrap.seed})"]
    if cfg.per_model:
        lines.append(f"  - per-model decoding overrides: {compact(cfg.per_model)}")
    return lines


def _problem_counts(samples: pl.DataFrame) -> str:
    if samples.height == 0:
        return "no samples"
    per_level = (samples.group_by("difficulty").agg(pl.col("example_id").n_unique().alias("n"))
                 .sort("difficulty"))
    levels = ", ".join(f"{r['difficulty']}: {r['n']}" for r in per_level.iter_rows(named=True))
    return f"{samples['example_id'].n_unique()} test problems (per difficulty {levels})"


def build_report(*, title: str, summary: pl.DataFrame, samples: pl.DataFrame, eval_runs: pl.DataFrame,
                 params: Mapping[str, Any], comparison_metrics: Sequence[str],
                 difficulty_metrics: Sequence[str], figure_files: Sequence[str], digits: int = 3,
                 parent_run_id: str | None = None) -> str:
    """The whole markdown report; ``figure_files`` are paths relative to the report (``figures/x.png``)."""
    out = [f"# {title}", ""]
    out.append(f"Evaluated on {_problem_counts(samples)}."
               + (f" MLflow parent run: `{parent_run_id}`." if parent_run_id else ""))
    out += ["", "## Configuration", "",
            "As loaded by the `kedro run` that wrote this report (after a partial run such as "
            "`--pipelines reporting`, these are the current parameters, not necessarily the training ones).", "",
            *configuration_lines(params), ""]
    out += ["## Comparison (all difficulty levels)", "",
            to_markdown(comparison_table(summary, comparison_metrics), digits=digits).rstrip(), ""]
    present = set(summary["metric"].to_list())
    for metric in difficulty_metrics:
        if metric in present:
            table = difficulty_table(summary, metric, with_ci=True)
            out += [f"## {metric} by difficulty", "", to_markdown(table, digits=digits).rstrip(), ""]
    if figure_files:
        out += ["## Figures", ""]
        for name in figure_files:
            out += [f"![{name.rsplit('/', 1)[-1].rsplit('.', 1)[0]}]({name})", ""]
    if eval_runs.height:
        out += ["## MLflow runs holding each model's `eval/*` metrics", "",
                to_markdown(eval_runs.select("model", "run_name", "run_id", "logged_to")).rstrip(), ""]
    return "\n".join(out).rstrip() + "\n"
