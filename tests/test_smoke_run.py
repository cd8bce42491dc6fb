"""End to end: one ``kedro run --env smoke`` of the whole default DAG in a copy of the project, then checks of what
it left in ``mlruns/mlflow.db`` (kedro-mlflow's parent run, one nested run per trained model) and in ``data/``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rl_distill.known_methods import known_methods

pytestmark = pytest.mark.slow

TRAINED = ("teacher", "student_init", *known_methods())


@pytest.fixture(scope="module")
def runs(smoke_project: Path):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{smoke_project / 'mlruns' / 'mlflow.db'}")
    try:
        frame = mlflow.search_runs(experiment_names=["rl-distill"], output_format="pandas")
    finally:
        mlflow.set_tracking_uri(None)
    return frame


def test_parent_run_has_the_parameters(runs) -> None:
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1
    params = [c for c in parents.columns if c.startswith("params.") and parents[c].notna().all()]
    assert any(c.startswith("params.distill") for c in params), params[:20]
    # each parameter once: the reporting nodes take their blocks, not the whole `parameters` (logged as parameters.*)
    assert not [c for c in params if c.startswith("params.parameters.")], params[:20]
    assert any(c.startswith("params.reporting.") for c in params), params[:20]


def test_the_run_ends_with_the_summary_and_names_its_parent_run(runs, smoke_project: Path) -> None:
    parent = runs[runs["tags.mlflow.parentRunId"].isna()].iloc[0]
    assert parent["tags.mlflow.runName"].startswith("default · smoke · params ")
    lines = (smoke_project / "kedro_run.stdout").read_text().strip().splitlines()
    assert lines[-3] == "report: data/08_reporting/comparison_table.md"
    assert lines[-2] == (f"MLflow comparison: http://127.0.0.1:5000/#/experiments/{parent['experiment_id']}"
                         "/runs?workflowType=machine_learning&viewStateShareKey=rl-distill-comparison")
    assert lines[-1] == (f"MLflow run: http://127.0.0.1:5000/#/experiments/{parent['experiment_id']}/runs/"
                         f"{parent['run_id']}  (open it with `make ui`)")
    # What a terminal shows: every stdout line, one line per progress bar (tqdm redraws it in place with \r, which
    # the captured text turns into newlines) and any other stderr line.
    stderr = (smoke_project / "kedro_run.stderr").read_text().splitlines()
    bar = re.compile(r"^([\w./]+): +\d+%\|")
    bars = {m.group(1) for m in map(bar.match, stderr) if m}
    other = [line for line in stderr if line.strip() and not bar.match(line)]
    assert {"teacher/sft", "student_init/sft", "rlad/rlad", "rtap/grpo"} <= bars, bars  # named <model>/<phase>
    assert len(lines) + len(bars) + len(other) <= 80, (len(lines), sorted(bars), other)
    assert not [line for line in lines if "Loading data" in line or "Saving data" in line]
    table = "\n".join(lines[-15:])
    for model in TRAINED:
        assert f"│ {model} " in table, table
    nested = runs[runs["tags.mlflow.parentRunId"] == parent["run_id"]]
    colors = dict(zip(nested["tags.mlflow.runName"], nested["tags.mlflow.runColor"]))
    assert len({colors[m] for m in TRAINED}) == len(TRAINED), colors  # every model its own colour


def test_the_experiment_opens_on_the_model_training_view(smoke_project: Path) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{smoke_project / 'mlruns' / 'mlflow.db'}")
    assert client.get_experiment_by_name("rl-distill").tags["mlflow.experimentKind"] == "custom_model_development"


def test_one_nested_run_per_trained_model(runs, smoke_project: Path) -> None:
    import mlflow

    parent_id = runs[runs["tags.mlflow.parentRunId"].isna()]["run_id"].iloc[0]
    nested = runs[runs["tags.mlflow.parentRunId"] == parent_id]
    by_name = dict(zip(nested["tags.mlflow.runName"], nested["run_id"]))
    for name in TRAINED:
        assert name in by_name, sorted(by_name)
        row = nested[nested["run_id"] == by_name[name]].iloc[0]
        for tag in ("method", "alpha", "seed", "student", "teacher"):
            assert isinstance(row[f"tags.{tag}"], str), (name, tag)
    mlflow.set_tracking_uri(f"sqlite:///{smoke_project / 'mlruns' / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        for name in TRAINED:
            run_id = by_name[name]
            history = client.get_metric_history(run_id, "train/loss")
            assert len(history) >= 2 and len({m.step for m in history}) == len(history), name
            outputs = client.get_run(run_id).outputs.model_outputs  # an MLflow Model, not a folder of files
            assert len(outputs) == 1, name
            model = client.get_logged_model(outputs[0].model_id)
            assert model.name == "model" and model.source_run_id == run_id, name
    finally:
        mlflow.set_tracking_uri(None)
    assert nested[nested["run_id"] == by_name["rlad"]]["tags.alpha"].iloc[0] == "0.5"


def test_a_trained_model_loads_from_its_mlflow_model_uri_and_generates(runs, smoke_project: Path) -> None:
    """The grpo student, loaded back as an MLflow Model (transformers and pyfunc flavours), writes the same greedy
    reply to a test prompt as the model directory the pipeline wrote."""
    import mlflow
    import polars as pl
    import transformers

    run_id = runs[runs["tags.mlflow.runName"] == "grpo"]["run_id"].iloc[0]
    prompt = pl.read_parquet(smoke_project / "data" / "05_model_input" / "test_examples.parquet")["prompt"][0]
    model_dir = smoke_project / "data" / "06_models" / "grpo"
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    reference = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    out = reference.generate(ids, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    expected = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert expected.strip()  # the reply is not empty, so the comparison means something
    mlflow.set_tracking_uri(f"sqlite:///{smoke_project / 'mlruns' / 'mlflow.db'}")
    try:
        model_id = mlflow.MlflowClient().get_run(run_id).outputs.model_outputs[0].model_id
        uri = f"models:/{model_id}"
        pipeline = mlflow.transformers.load_model(uri)
        reply = pipeline(prompt, max_new_tokens=24, do_sample=False, return_full_text=False)[0]["generated_text"]
        assert reply == expected
        predicted = mlflow.pyfunc.load_model(uri).predict([prompt], params={"max_new_tokens": 24})
        assert predicted[0].removeprefix(prompt) == expected
    finally:
        mlflow.set_tracking_uri(None)


def test_checkpoints_saved_through_the_catalog(smoke_project: Path) -> None:
    for name in TRAINED:
        model_dir = smoke_project / "data" / "06_models" / name
        assert (model_dir / "model.safetensors").exists() and (model_dir / "tokenizer.json").exists(), name


def test_every_rl_method_gets_a_gradient(runs, smoke_project: Path) -> None:
    """The smoke students learn a little: an RL method whose groups all tie (zero_adv_frac = 1) or whose gradient
    is 0 would pass every other check while its update is broken."""
    import mlflow

    rl = [name for name, spec in known_methods().items() if spec.trainer in ("rl", "rtap")]
    by_name = dict(zip(runs["tags.mlflow.runName"], runs["run_id"]))
    mlflow.set_tracking_uri(f"sqlite:///{smoke_project / 'mlruns' / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        for name in rl:
            grads = [m.value for m in client.get_metric_history(by_name[name], "train/grad_norm")]
            zero_adv = [m.value for m in client.get_metric_history(by_name[name], "rollout/zero_adv_frac")]
            assert grads and sum(g > 0 for g in grads) >= len(grads) / 2, (name, grads)
            assert zero_adv and sum(zero_adv) / len(zero_adv) < 1.0, (name, zero_adv)
    finally:
        mlflow.set_tracking_uri(None)


def test_benchmark_trains_every_method_per_seed_and_pairs_them_with_grpo(smoke_project: Path) -> None:
    import polars as pl

    from rl_distill.known_methods import distill_methods
    from rl_distill.pipelines.benchmark.pipeline import benchmarked_methods

    from .conftest import kedro

    result = kedro(smoke_project, "run", "--env", "smoke", "--pipelines", "benchmark", timeout=1500)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    table = pl.read_csv(smoke_project / "data" / "08_reporting" / "benchmark_table.csv")
    acc = table.filter((pl.col("difficulty") == "all") & (pl.col("metric") == "accuracy"))
    seeds = dict(zip(acc["model"], acc["n_seeds"]))
    assert seeds == {"teacher": 1, "student_init": 1, **dict.fromkeys(benchmarked_methods(), 2)}  # smoke: seeds [0, 1]
    paired = table.filter((pl.col("difficulty") == "all") & (pl.col("metric") == "accuracy_vs_grpo"))
    assert set(paired["model"]) == set(benchmarked_methods()) - {"grpo"}
    assert all(lo <= v <= hi for v, lo, hi in paired.select("value", "ci_low", "ci_high").iter_rows())
    assert "rtap" not in distill_methods()  # trained by its own pipeline, benchmarked all the same
    for method in benchmarked_methods():
        for seed in (0, 1):
            assert (smoke_project / "data" / "06_models" / "benchmark" / method / f"seed_{seed}" /
                    "model.safetensors").exists()
    report = (smoke_project / "data" / "08_reporting" / "benchmark.md").read_text()
    assert "Paired difference to grpo" in report and "benchmark_val_accuracy.png" in report
    assert (smoke_project / "data" / "08_reporting" / "figures" / "benchmark_val_accuracy.png").exists()
