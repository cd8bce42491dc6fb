"""The evaluation pipeline: parameter checks, test subsampling, metric names, a slice on an in-memory catalog with
a tiny random model and a throwaway MLflow store, and (slow) what the smoke run leaves in MLflow and data/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from rl_distill.evaluation.samples import SAMPLE_SCHEMA
from rl_distill.evaluation.summary import SUMMARY_SCHEMA
from rl_distill.evaluation.test_split import metric_key, mlflow_metrics, select_test_examples
from rl_distill.io.model_dir import ModelDir
from rl_distill.models.factory import ModelConfig, build_model
from rl_distill.models.tokenizer import build_tokenizer
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.evaluation import config as eval_config
from rl_distill.pipelines.evaluation.pipeline import create_pipeline
from rl_distill.pipelines.training import RUN_FILE
from rl_distill.tasks import get_task
from rl_distill.typed_config import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
OUTPUTS = ("eval_samples", "eval_summary", "eval_summary_csv", "eval_runs")


def _params(**overrides: Any) -> dict[str, Any]:
    params = {"decoding": {"num_samples": 2, "max_new_tokens": 6, "prompts_per_batch": 8, "progress": False},
              "ks": [1, 2], "max_test_examples": 4, "bootstrap": {"n_resamples": 50}, "device": "cpu"}
    params.update(overrides)
    return params


def _frame(rows: list[tuple[str, int]]) -> pl.DataFrame:
    return pl.DataFrame({"id": [r[0] for r in rows], "task": "knights_knaves", "difficulty": [r[1] for r in rows],
                         "prompt": "p", "trace": "t", "answer": "a"})


# --- parameters ---

@pytest.mark.parametrize("env", ["base", "smoke"])
def test_shipped_parameters_validate(env: str) -> None:
    block = yaml.safe_load((CONF / env / "parameters_evaluation.yml").read_text())["evaluation"]
    PARAMETER_BLOCKS.get("evaluation")(block, f"{env}:evaluation")
    cfg = eval_config.load_params(block)
    assert cfg.decoding_for("rtap").max_cycles == 4 and cfg.decoding_for("rlad").max_cycles is None


@pytest.mark.parametrize(("override", "message"), [
    ({"decodng": {}}, "Did you mean 'decoding'"),
    ({"ks": [1, 4]}, "pass@4 needs at least 4 samples"),          # num_samples = 2 < 4
    ({"per_model": {"rlda": {"max_cycles": 2}}}, "unknown model 'rlda'"),
    ({"per_model": {"rlad": {"max_cycle": 2}}}, "per_model.rlad: unknown key 'max_cycle'"),
    ({"device": "tpu"}, "device='tpu' is not valid"),
    ({"bootstrap": {"level": 1.0}}, "level=1.0 is out of range"),
])
def test_bad_parameters_fail_naming_the_key(override: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PARAMETER_BLOCKS.get("evaluation")(_params(**override), "parameters_evaluation.yml:evaluation")


def test_every_registered_method_is_evaluated() -> None:
    from rl_distill.known_methods import known_methods

    models = eval_config.evaluated_models()
    assert list(models) == ["teacher", "student_init", *known_methods()]
    assert {"rtap", "opd", "rlad"} <= set(models) and models["rtap"] == "rtap.student_model"
    nodes = {n.name for n in create_pipeline().nodes}
    assert {f"evaluation.{m}" for m in known_methods()} <= nodes


# --- pure helpers ---

def test_subsample_is_even_over_levels_and_deterministic() -> None:
    # 10 problems at level 2, 3 at level 3; a cap of 6 takes 3 + 3 (round robin), not 6 of level 2.
    frame = _frame([(f"a{i}", 2) for i in range(10)] + [(f"b{i}", 3) for i in range(3)])
    picked = select_test_examples(frame, 6, seed=1)
    assert picked.group_by("difficulty").len().sort("difficulty")["len"].to_list() == [3, 3]
    assert picked["id"].to_list() == select_test_examples(frame, 6, seed=1)["id"].to_list()
    assert select_test_examples(frame, None, seed=1).height == 13
    # A cap of 8 takes all 3 of level 3 and 5 of level 2.
    assert select_test_examples(frame, 8, seed=0)["difficulty"].to_list().count(3) == 3


def test_mlflow_metric_names() -> None:
    summary = pl.DataFrame([("rlad", "all", "accuracy", 0.5, 0.4, 0.6), ("rlad", "3", "pass@2", 0.75, 0.5, 1.0),
                            ("rlad", "2", "oops_rate", 0.25, 0.0, 0.5)], schema=SUMMARY_SCHEMA, orient="row")
    samples = pl.DataFrame([("rlad", "p1", 2, "sampled", 0, True, "correct", True, 5, 1, 0, True),
                            ("rlad", "p1", 2, "sampled", 1, False, "wrong", True, 5, 1, 0, False),
                            ("rlad", "p2", 3, "sampled", 0, True, "correct", True, 5, 1, 0, True)],
                           schema=SAMPLE_SCHEMA, orient="row")
    assert metric_key("mean@8", "all") == "eval/mean_at_8"
    assert mlflow_metrics(summary, samples) == {
        "eval/accuracy": 0.5, "eval/accuracy_ci_low": 0.4, "eval/accuracy_ci_high": 0.6,  # CIs over all problems
        "eval/pass_at_2_d3": 0.75, "eval/oops_rate_d2": 0.25,
        "eval/n_problems": 2.0, "eval/n_problems_d2": 1.0, "eval/n_problems_d3": 1.0}


# --- a slice on an in-memory catalog: every model node, then combine ---

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pl.DataFrame]:
    """A tiny random model saved twice (one copy will carry an mlflow_run.json) and a 6-problem test split."""
    task = get_task("knights_knaves")
    tokenizer = build_tokenizer(task.alphabet)
    model = build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    max_position_embeddings=256), tokenizer)
    root = tmp_path_factory.mktemp("models")
    dirs = []
    for name in ("trained", "loaded"):
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        dirs.append(root / name)
    examples = task.generate(4, difficulty=2, seed=0) + task.generate(2, difficulty=3, seed=1)
    test = pl.DataFrame([e.__dict__ for e in examples])
    return dirs[0], dirs[1], test


def _run(test: pl.DataFrame, model_dirs: dict[str, Path], params: dict[str, Any]) -> dict[str, Any]:
    datasets = {dataset: MemoryDataset(ModelDir(model_dirs.get(model, model_dirs["default"])))
                for model, dataset in eval_config.evaluated_models().items()}
    tokenizer = build_tokenizer(get_task("knights_knaves").alphabet)  # the project's: equal to every model's
    catalog = DataCatalog({**datasets, "test_examples": MemoryDataset(test), "tokenizer": MemoryDataset(tokenizer),
                           "params:evaluation": MemoryDataset(params), **{o: MemoryDataset() for o in OUTPUTS}})
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in OUTPUTS}


def test_slice_logs_into_training_runs_and_builds_the_tidy_table(checkpoints, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    trained, loaded, test = checkpoints
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run(run_name="kedro-run") as parent:
            with mlflow.start_run(run_name="rlad", nested=True) as training:
                pass
            (trained / RUN_FILE).write_text(json.dumps({"run_id": training.info.run_id}))
            out = _run(test, {"rlad": trained, "default": loaded}, _params())
        client = mlflow.MlflowClient()
        metrics = client.get_run(training.info.run_id).data.metrics
        children = client.search_runs([parent.info.experiment_id],
                                      f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        artifacts = {f.path for f in client.list_artifacts(training.info.run_id, "eval")}
    finally:
        mlflow.set_tracking_uri(None)
        (trained / RUN_FILE).unlink(missing_ok=True)

    models = list(eval_config.evaluated_models())
    runs = {r["model"]: r for r in out["eval_runs"].iter_rows(named=True)}
    assert list(runs) == models
    # rlad's directory names its training run: metrics land there, per difficulty too.
    assert runs["rlad"]["run_id"] == training.info.run_id and runs["rlad"]["logged_to"] == "training_run"
    assert {"eval/accuracy", "eval/accuracy_d2", "eval/accuracy_d3", "eval/pass_at_2", "eval/greedy_accuracy",
            "eval/response_tokens", "eval/oops_rate", "eval/n_problems"} <= set(metrics)
    assert metrics["eval/n_problems"] == 4  # max_test_examples = 4: 2 of each level (round robin)
    assert {"eval/summary.csv", "eval/config.json"} <= artifacts
    # The others have no run file: one nested eval.<model> run each under the active run.
    assert {r.data.tags["mlflow.runName"] for r in children} == {"rlad"} | {f"eval.{m}" for m in models
                                                                           if m != "rlad"}
    assert runs["teacher"]["logged_to"] == "eval_run" and runs["teacher"]["run_name"] == "eval.teacher"

    samples, summary = out["eval_samples"], out["eval_summary"]
    assert samples.schema == pl.Schema(SAMPLE_SCHEMA)
    # 6 models x 4 problems x (2 sampled + 1 greedy)
    assert samples.height == len(models) * 4 * 3
    assert summary.columns == list(SUMMARY_SCHEMA) and out["eval_summary_csv"].equals(summary)
    acc = summary.filter(pl.col("metric") == "accuracy")
    assert set(acc["model"]) == set(models) and set(acc["difficulty"]) == {"all", "2", "3"}
    assert {"pass@1", "pass@2", "mean@2", "greedy_accuracy", "oops_rate"} <= set(summary["metric"])


def test_slice_without_any_mlflow_run_skips_logging(checkpoints, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _, loaded, test = checkpoints
    monkeypatch.chdir(tmp_path)
    out = _run(test, {"default": loaded}, _params(decoding={"num_samples": 0, "greedy": True, "max_new_tokens": 4,
                                                            "progress": False}, ks=[1]))
    runs = out["eval_runs"]
    assert set(runs["logged_to"]) == {"none"} and runs["run_id"].null_count() == len(eval_config.evaluated_models())
    assert set(out["eval_samples"]["decoding"]) == {"greedy"}
    assert "greedy_accuracy" in set(out["eval_summary"]["metric"]) and not (tmp_path / "mlruns").exists()
    assert not (tmp_path / "mlflow.db").exists()


# --- the smoke run (`kedro run --env smoke` in a project copy) ---

@pytest.mark.slow
def test_smoke_run_logs_eval_metrics_into_each_models_run(smoke_project: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{smoke_project / 'mlruns' / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        eval_runs = pl.read_csv(smoke_project / "data" / "07_model_output" / "eval_runs.csv")
        models = list(eval_config.evaluated_models())
        assert eval_runs["model"].to_list() == models
        levels = pl.read_parquet(smoke_project / "data" / "05_model_input" / "test_examples.parquet")["difficulty"]
        for row in eval_runs.iter_rows(named=True):
            assert row["logged_to"] == "training_run", row  # every smoke model records its training run
            run = client.get_run(row["run_id"])
            assert run.data.tags["mlflow.runName"] == row["model"]
            metrics = run.data.metrics
            assert 0.0 <= metrics["eval/accuracy"] <= 1.0, row
            assert all(f"eval/accuracy_d{lv}" in metrics for lv in levels.unique()), sorted(metrics)
            assert "train/loss" in metrics  # the same run holds the training curves
    finally:
        mlflow.set_tracking_uri(None)
    summary = pl.read_parquet(smoke_project / "data" / "08_reporting" / "eval_summary.parquet")
    assert summary.columns == list(SUMMARY_SCHEMA) and set(summary["model"]) == set(models)
    assert (smoke_project / "data" / "08_reporting" / "eval_summary.csv").exists()
    assert pl.read_parquet(smoke_project / "data" / "07_model_output" / "eval_samples.parquet").height > 0
