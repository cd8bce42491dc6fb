"""The reporting pipeline: a slice on an in-memory catalog fed a synthetic evaluation summary, the optional tuning
input, training curves read back from a throwaway MLflow store, and (slow) what the smoke run writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.matplotlib import MatplotlibDataset

from rl_distill.evaluation.report import configuration_lines
from rl_distill.evaluation.samples import SAMPLE_SCHEMA
from rl_distill.evaluation.summary import summarize
from rl_distill.io.optional_dataset import OptionalDataset
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.evaluation.nodes import RUNS_SCHEMA
from rl_distill.pipelines.reporting.nodes import collect_histories, difficulty_label
from rl_distill.pipelines.reporting.pipeline import REPORT_BLOCKS, create_pipeline
from rl_distill.typed_config import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
MODELS = {"teacher": 0.8, "student_init": 0.3, "grpo": 0.45, "kl_kd": 0.5, "rlad": 0.6}
PARAMETERS = {
    "data_curation": {"tasks": [{"name": "knights_knaves", "difficulties": [2, 3]}], "seed": 7},
    "teacher": {"model": {"family": "llama", "hidden_size": 128, "num_hidden_layers": 4},
                "sft": {"total_steps": 1200, "seed": 1}, "grpo": {"total_steps": 40, "seed": 1}},
    "student_init": {"init_from": "/models/student", "sft": {"total_steps": 200, "seed": 2}},
    "distill": {"common": {"seed": 11, "total_steps": 50, "prompts_per_step": 16,
                           "rollout": {"group_size": 8, "max_new_tokens": 200}, "optimizer": {"lr": 5e-4}},
                "rlad": {"loss": {"name": "rlad", "config": {"alpha": 0.5}}}},
    "evaluation": {"decoding": {"num_samples": 4, "temperature": 0.6, "top_p": 0.95, "seed": 3}, "ks": [1, 4],
                   "max_test_examples": 12},
    "tuning": {"metric": "val/accuracy"},
    "reporting": {"smoothing": 0.5},
}
OUTPUTS = ("report_figures", "comparison_table_md", "comparison_table_csv", "difficulty_table_csv")


class _Kept(MemoryDataset):
    """A MemoryDataset that keeps objects as they are (figures are not deep-copied) and is never released."""

    def __init__(self) -> None:
        super().__init__(copy_mode="assign")

    def _release(self) -> None:
        pass


@pytest.fixture(scope="module")
def evaluation() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Synthetic per-sample records (5 models x levels 2, 3 x 6 problems x (4 sampled + 1 greedy)) + summary."""
    rng = np.random.default_rng(0)
    rows = []
    for model, skill in MODELS.items():
        for level in (2, 3):
            for p in range(6):
                for decoding, n in (("sampled", 4), ("greedy", 1)):
                    for i in range(n):
                        ok = bool(rng.random() < skill - 0.15 * (level - 2))
                        rows.append((model, f"kk/{level}/{p}", level, decoding, i, ok, "correct" if ok else "wrong",
                                     True, int(rng.integers(20, 40 * level)), 1, int(rng.poisson(0.3)), ok))
    samples = pl.DataFrame(rows, schema=SAMPLE_SCHEMA, orient="row")
    return samples, summarize(samples, (1, 4), n_resamples=100)


def _run(samples: pl.DataFrame, summary: pl.DataFrame, eval_runs: pl.DataFrame,
         trials: pl.DataFrame | None) -> dict[str, Any]:
    catalog = DataCatalog({
        "eval_summary": MemoryDataset(summary), "eval_samples": MemoryDataset(samples),
        "eval_runs": MemoryDataset(eval_runs), "tuning_trials_if_any": MemoryDataset(trials),
        **{f"params:{block}": MemoryDataset(PARAMETERS.get(block)) for block in REPORT_BLOCKS},
        **{name: _Kept() for name in OUTPUTS}})
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in OUTPUTS}


def _no_runs() -> pl.DataFrame:
    return pl.DataFrame([(m, None, None, "none") for m in MODELS], schema=RUNS_SCHEMA, orient="row")


@pytest.mark.parametrize("env", ["base", "smoke"])
def test_shipped_parameters_validate(env: str) -> None:
    block = yaml.safe_load((CONF / env / "parameters_reporting.yml").read_text())["reporting"]
    PARAMETER_BLOCKS.get("reporting")(block, f"{env}:reporting")
    with pytest.raises(ConfigError, match="Did you mean 'smoothing'"):
        PARAMETER_BLOCKS.get("reporting")({**block, "smoothng": 0.1}, "parameters_reporting.yml:reporting")


def test_slice_writes_tables_report_and_figures(evaluation, tmp_path: Path) -> None:
    samples, summary = evaluation
    trials = pl.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE", "PRUNED", "FAIL"],
                           "value": [0.4, 0.3, None], "alpha": [0.3, 0.8, 0.5]})
    out = _run(samples, summary, _no_runs(), trials)

    table = out["comparison_table_csv"]
    assert table["model"].to_list() == list(MODELS)
    assert {"accuracy", "accuracy_ci_low", "pass@4", "response_tokens", "oops_rate"} <= set(table.columns)
    by_level = out["difficulty_table_csv"]
    assert by_level.columns[:4] == ["model", "2", "2_ci_low", "2_ci_high"] and "all" in by_level.columns

    report = out["comparison_table_md"]
    for expected in ("# rl-distill: method comparison", "12 test problems (per difficulty 2: 6, 3: 6)",
                     "split seed 7", "hidden_size=128", "SFT 1200 steps (seed 1), then GRPO 40 steps (seed 1)",
                     "loaded from `/models/student`", "seed 11, 50 steps x 16 prompts x G=8", "alpha=0.5",
                     "4 samples per problem at temperature 0.6", "max_new_tokens 512", "sampling seed 3",
                     "| model | accuracy | greedy_accuracy | pass@4 |", "## accuracy by difficulty",
                     "![alpha_sweep](figures/alpha_sweep.png)", "Oops markers per response",
                     "`rlad` (GRPO with the ratio taken against the teacher / old-policy mixture anchor"):
        assert expected in report, expected

    figures = out["report_figures"]
    assert list(figures) == ["accuracy_by_difficulty.png", "learning_curves.png", "response_lengths.png",
                             "alpha_sweep.png"]
    for name, fig in figures.items():
        for ax in fig.axes:
            if ax.get_visible() and ax.has_data():  # every plotted axis is labelled (a twin shares its x label)
                siblings = ax.get_shared_x_axes().get_siblings(ax)
                assert ax.get_ylabel() and any(a.get_xlabel() for a in siblings), name
    # The catalog's dataset writes the dict as one PNG per entry.
    MatplotlibDataset(filepath=str(tmp_path / "figures"), save_args={"dpi": 60}).save(figures)
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(figures)


def test_without_a_tuning_study_the_alpha_sweep_is_skipped(evaluation) -> None:
    samples, summary = evaluation
    out = _run(samples, summary, _no_runs(), None)
    assert "alpha_sweep.png" not in out["report_figures"] and "alpha_sweep" not in out["comparison_table_md"]


def test_optional_dataset_loads_none_when_absent(tmp_path: Path) -> None:
    config = {"type": "polars.EagerPolarsDataset", "file_format": "csv", "filepath": str(tmp_path / "trials.csv")}
    ds = OptionalDataset(dataset=config)
    assert ds.load() is None and ds.exists()
    ds.save(pl.DataFrame({"alpha": [0.5], "value": [0.25], "state": ["COMPLETE"]}))
    assert ds.load()["value"].to_list() == [0.25]


def test_histories_come_from_each_models_training_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        exp = client.create_experiment("t")
        grpo, rlad = (client.create_run(exp).info.run_id for _ in range(2))
        for step, (g, r) in enumerate([(0.1, 0.2), (0.3, 0.5)]):
            client.log_metric(grpo, "val/accuracy", g, step=step * 10)
            client.log_metric(rlad, "val/accuracy", r, step=step * 10)
        client.log_metric(rlad, "rollout/reward_mean", -1.0, step=0)
        runs = pl.DataFrame([("grpo", grpo, "grpo", "training_run"), ("rlad", rlad, "rlad", "training_run"),
                             ("teacher", grpo, "teacher", "training_run"),   # not a curve model
                             ("kl_kd", "0" * 32, "eval.kl_kd", "eval_run")], schema=RUNS_SCHEMA, orient="row")
        histories = collect_histories(runs, {})
    finally:
        mlflow.set_tracking_uri(None)
    # Default curve_models order (offline_kd, grpo, kl_kd, rlad, rtap), restricted to the evaluated ones.
    assert list(histories) == ["grpo", "kl_kd", "rlad"]
    assert histories["grpo"] == {"val/accuracy": [(0, 0.1), (10, 0.3)]}
    assert histories["kl_kd"] == {}  # its metrics live in an eval-only run: no training curves
    assert histories["rlad"]["rollout/reward_mean"] == [(0, -1.0)]


def test_difficulty_axis_is_named_after_the_tasks(evaluation) -> None:
    samples, summary = evaluation
    fig = _run(samples, summary, _no_runs(), None)["report_figures"]["accuracy_by_difficulty.png"]
    assert fig.axes[0].get_xlabel() == "difficulty (K&K: number of people)"  # data_curation.tasks: knights_knaves
    assert difficulty_label({"data_curation": {"tasks": [{"name": "arithmetic"}, {"name": "jsonl"}]}}) == (
        "difficulty (arithmetic: digits per operand)")
    assert difficulty_label({}) == "difficulty level"


def test_configuration_lines_say_what_is_missing() -> None:
    lines = configuration_lines({})
    assert any("Teacher**: not in the parameters" in line for line in lines)


# --- the smoke run ---

@pytest.mark.slow
def test_smoke_run_writes_the_report_and_logs_it_to_the_parent_run(smoke_project: Path) -> None:
    import mlflow

    reporting = smoke_project / "data" / "08_reporting"
    for name in ("comparison_table.md", "comparison_table.csv", "difficulty_table.csv", "eval_summary.csv",
                 "figures/accuracy_by_difficulty.png", "figures/learning_curves.png",
                 "figures/response_lengths.png"):
        assert (reporting / name).is_file() and (reporting / name).stat().st_size > 0, name
    assert not (reporting / "figures" / "alpha_sweep.png").exists()  # no tuning study in the default run
    report = (reporting / "comparison_table.md").read_text()
    assert "## Configuration" in report and "Distillation** (`distill.common`" in report and "rlad" in report
    table = pl.read_csv(reporting / "comparison_table.csv")
    assert {"teacher", "student_init", "grpo", "kl_kd", "rlad"} <= set(table["model"])

    mlflow.set_tracking_uri(f"sqlite:///{smoke_project / 'mlruns' / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(experiment_names=["rl-distill"], output_format="pandas")
        parent = runs[runs["tags.mlflow.parentRunId"].isna()]["run_id"].iloc[0]
        client = mlflow.MlflowClient()
        files = {f.path for f in client.list_artifacts(parent, "reporting")}
        figures = {f.path for f in client.list_artifacts(parent, "reporting/figures")}
    finally:
        mlflow.set_tracking_uri(None)
    assert {"reporting/comparison_table.md", "reporting/comparison_table.csv", "reporting/eval_summary.csv"} <= files
    assert "reporting/figures/learning_curves.png" in figures
