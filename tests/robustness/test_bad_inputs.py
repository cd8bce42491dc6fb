"""The catalogue of bad inputs a hostile but fair user tries (issue 17): each fails with exit status 1, before any node
ran (bad configuration) or before any training step ran (bad data or model files), with a message naming the bad
key, value or path and the fix. Runs ``kedro run --env smoke`` in-process on a project copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
import yaml

# (case id, --params value, pipeline, fragments the message must hold). Each fails when the Kedro context is created.
CONFIG_CASES = [
    # 1. NaN and inf (before issue 17, lr=inf started a node and alpha=nan trained three NaN steps)
    ("nan-lr", "distill.common.optimizer.lr=.nan", "rlad",
     ["parameters_distill.yml:distill.common.optimizer.lr=nan", "not a finite number"]),
    ("inf-lr", "distill.common.optimizer.lr=.inf", "rlad",
     ["parameters_distill.yml:distill.common.optimizer.lr=inf", "not a finite number"]),
    ("nan-alpha", "distill.rlad.loss.config.alpha=.nan", "rlad", ["distill.rlad.loss", "alpha=nan"]),
    ("inf-alpha", "distill.rlad.loss.config.alpha=.inf", "rlad", ["distill.rlad.loss", "alpha=inf"]),
    ("inf-teacher-lr", "teacher.sft.optimizer.lr=.inf", "teacher", ["teacher.sft", "lr=inf", "finite"]),
    # 4. the block that holds the bad key, not the method that merged it; the key path of a bad loss name
    ("typo-in-common", "distill.common.total_step=3", "rlad",
     ["parameters_distill.yml:distill.common: unknown key 'total_step'", "Did you mean 'total_steps'"]),
    ("group-size-0", "distill.common.rollout.group_size=0", "grpo", ["distill.common.rollout", "group_size=0"]),
    ("negative-lr", "distill.common.optimizer.lr=-1", "grpo",
     ["distill.common.optimizer", "lr=-1.0 is out of range"]),
    ("max-new-tokens-0", "distill.common.rollout.max_new_tokens=0", "grpo",
     ["distill.common.rollout", "max_new_tokens=0"]),
    ("unknown-loss-name", "teacher.grpo.loss.name=ppo", "teacher",
     ["parameters_teacher.yml:teacher.grpo.loss: name='ppo'", "unknown policy loss 'ppo'", "Valid names: grpo"]),
    # the cases that already held before issue 17
    ("typo-top-level", "distil.common.seed=1", "rlad", ["unknown top-level parameter block 'distil'", "distill"]),
    ("typo-method-block", "distill.rlad.los.name=rlad", "rlad", ["distill.rlad: unknown key 'los'", "loss"]),
    ("typo-loss-config", "distill.rlad.loss.config.alpa=0.5", "rlad", ["unknown key 'alpa'", "alpha"]),
    ("typo-nested", "distill.common.rollout.group_sise=4", "grpo",
     ["distill.common.rollout: unknown key 'group_sise'", "group_size"]),
    ("unknown-method", "distill.rlda.loss.name=rlad", "rlad", ["unknown key 'rlda'", "rlad"]),
    ("wrong-type-int", "distill.common.total_steps=abc", "grpo",
     ["distill.common.total_steps", "expected an integer"]),
    ("wrong-type-bool", "distill.common.checkpoint.resume=maybe", "grpo", ["resume", "expected true or false"]),
    ("alpha-out-of-range", "distill.rlad.loss.config.alpha=1.5", "rlad", ["alpha=1.5 is out of range", "[0.0, 1.0]"]),
    ("wrong-loss-for-method", "distill.rlad.loss.name=grpo", "rlad", ["distill.rlad.loss.name must be 'rlad'"]),
    ("unknown-choice", "distill.common.teacher_dtype=bf16", "rlad", ["teacher_dtype='bf16' is not valid"]),
    ("missing-init-from", "teacher.init_from=data/06_models/no_such_teacher", "teacher",
     ["no_such_teacher"]),
    ("path-traversal-init-from", "teacher.init_from=../../../../etc", "teacher", ["etc"]),
]


@pytest.mark.parametrize(("params", "pipeline", "fragments"), [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_fails_before_any_node(catalogue_project, kedro_run, params, pipeline, fragments) -> None:
    out = kedro_run(catalogue_project, "run", "--env", "smoke", "--pipelines", pipeline, "--params", params)
    assert out.exit_code == 1, out.message
    assert out.nodes == [], out.nodes
    for fragment in fragments:
        assert fragment in out.message, (fragment, out.message)


def test_unknown_pipeline_fails_naming_it(catalogue_project, kedro_run) -> None:
    out = kedro_run(catalogue_project, "run", "--env", "smoke", "--pipelines", "rlda")
    assert out.exit_code != 0 and out.nodes == []
    assert "Failed to find the pipeline named 'rlda'" in out.message  # Kedro's own message, with the closest names
    assert "Did you mean one of these instead?" in out.message and "rlad" in out.message.split("instead?")[1]


def test_unknown_environment_fails_listing_the_valid_ones(catalogue_project, kedro_run) -> None:
    # Before: an MLflow exception that never mentioned the environment
    out = kedro_run(catalogue_project, "run", "--env", "smok", "--pipelines", "grpo")
    assert out.exit_code == 1 and out.nodes == []
    assert "--env 'smok': there is no" in out.message
    assert "Valid environments: local, qwen3_gpu, rtap_paper, smoke, smollm2." in out.message
    assert "Did you mean 'smoke'?" in out.message
    assert not (catalogue_project / "mlruns" / "mlflow.db").exists()  # MLflow was never touched: no FAILED run


def _runs(project: Path) -> list:
    db = project / "mlruns" / "mlflow.db"
    if not db.exists():
        return []
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def test_missing_inputs_are_all_named_with_the_pipeline_that_writes_each(catalogue_project, kedro_run) -> None:
    # Before: 28 s, 3 chained tracebacks naming the first missing file only, and a FAILED MLflow run
    out = kedro_run(catalogue_project, "run", "--env", "smoke", "--pipelines", "rlad")
    assert out.exit_code == 1 and out.nodes == []
    assert "this run needs 5 input(s) that do not exist yet" in out.message, out.message
    for line in ("rl_prompts (data/05_model_input/rl_prompts.parquet): written by `kedro run --pipelines "
                 "teacher_scoring`",
                 "student_init_model (data/06_models/student_init): written by `kedro run --pipelines student_init`",
                 "tokenizer (data/06_models/tokenizer): written by `kedro run --pipelines data_curation`"):
        assert line in out.message, (line, out.message)
    assert "or `kedro run` for the whole DAG" in out.message
    assert _runs(catalogue_project) == []  # refused before kedro-mlflow opened a run


def _jsonl_project(project: Path, name: str, content: bytes, on_bad_row: str) -> None:
    data = project / "data" / "01_raw" / name
    data.write_bytes(content)
    smoke = project / "conf" / "smoke" / "parameters_data_curation.yml"
    params = yaml.safe_load(smoke.read_text())
    params["data_curation"].update(on_bad_row=on_bad_row, tasks=[
        {"name": "jsonl", "difficulties": [1], "n_per_difficulty": 100, "params": {"data_files": [str(data)]}}])
    smoke.write_text(yaml.safe_dump(params))


def _rows(n: int) -> bytes:
    return b"".join(b'{"question": "%d+%d", "answer": "%d"}\n' % (i, i, 2 * i) for i in range(n))


# (case id, file content, fragments). Each fails in data_curation's first node, before any training.
DATA_CASES = [
    ("non-utf8-row", _rows(3) + b'{"question": "caf\xe9", "answer": "3"}\n',
     ["bad.jsonl:line 4: not valid UTF-8 (byte 0xe9 at column 18)", "on_bad_row: skip"]),
    ("malformed-json", _rows(2) + b'{"question": "2+2", "answer": }\n',  # "}" is character 31 of the line
     ["bad.jsonl:line 3: malformed JSON (Expecting value at column 31)"]),
    ("missing-field", _rows(2) + b'{"question": "2+2"}\n', ["bad.jsonl:line 3: field 'answer' is missing"]),
    ("empty-field", _rows(2) + b'{"question": "2+2", "answer": "  "}\n', ["bad.jsonl:line 3: field 'answer' is empty"]),
    ("not-an-object", _rows(2) + b'[1, 2]\n', ["bad.jsonl:line 3"]),
]


@pytest.mark.parametrize(("content", "fragments"), [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_bad_rows_fail_naming_file_line_and_field(project_factory, kedro_run, content, fragments) -> None:
    project = project_factory()
    _jsonl_project(project, "bad.jsonl", content, "error")
    out = kedro_run(project, "run", "--env", "smoke", "--pipelines", "data_curation")
    assert out.exit_code == 1 and out.train_steps == 0
    for fragment in fragments:
        assert fragment in out.message, (fragment, out.message)


def test_missing_and_empty_data_files(project_factory, kedro_run) -> None:
    project = project_factory()
    _jsonl_project(project, "empty.jsonl", b"", "error")
    out = kedro_run(project, "run", "--env", "smoke", "--pipelines", "data_curation")
    assert out.exit_code == 1 and out.train_steps == 0, out.message
    assert "empty.jsonl: the file holds no rows" in out.message, out.message
    (project / "data" / "01_raw" / "empty.jsonl").unlink()
    out = kedro_run(project, "run", "--env", "smoke", "--pipelines", "data_curation")
    assert out.exit_code == 1 and "empty.jsonl does not exist" in out.message, out.message


def test_skipped_non_utf8_row_is_counted(project_factory, kedro_run) -> None:
    import polars as pl

    project = project_factory()
    _jsonl_project(project, "bad.jsonl", _rows(40) + b'{"question": "caf\xe9", "answer": "3"}\n', "skip")
    out = kedro_run(project, "run", "--env", "smoke", "--pipelines", "data_curation")
    assert out.exit_code == 0, out.message
    stats = pl.read_csv(next((project / "data").rglob("curation_stats*.csv"))).filter(pl.col("subset") == "jsonl")
    assert (stats["generated"][0], stats["bad_rows_skipped"][0]) == (40, 1)  # 40 good rows kept, the bad one counted
    assert "\ufffd" not in "".join(
        pl.read_parquet(p).write_csv() for p in (project / "data").rglob("*.parquet"))


@pytest.mark.slow  # needs the smoke run's data (the session's `kedro run --env smoke`)
def test_truncated_input_model_fails_naming_its_path(smoke_project, tmp_path, kedro_run) -> None:
    project = tmp_path / "project"
    shutil.copytree(smoke_project, project, ignore=shutil.ignore_patterns("mlruns"))
    (project / "mlruns").mkdir()
    weights = project / "data" / "06_models" / "student_init" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    out = kedro_run(project, "run", "--env", "smoke", "--pipelines", "grpo")
    assert out.exit_code == 1 and out.train_steps == 0
    assert f"cannot load the model directory {weights.parent}" in out.message, out.message
    assert "truncated or corrupt" in out.message


def _other_vocab_model(path: Path) -> None:
    """An HF model directory whose tokenizer is K&K's, not the smoke project's (arithmetic: digits and signs)."""
    from rl_distill.models.checkpoint import save_hf_dir
    from rl_distill.models.factory import ModelConfig, build_model
    from rl_distill.models.tokenizer import alphabet_for, build_tokenizer
    from rl_distill.tasks import get_task

    tokenizer = build_tokenizer(alphabet_for([get_task("knights_knaves")]))
    model = build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                    seed=0), tokenizer)
    save_hf_dir(model, tokenizer, path)


# (case id, model directory replaced or written, pipeline, --params, fragments)
VOCAB_CASES = [
    ("teacher-init-from", "data/06_models/other_vocab", "teacher", "teacher.init_from=data/06_models/other_vocab",
     ["teacher (data/06_models/other_vocab) and project tokenizer tokenizers differ", "vocab sizes"]),
    ("selected-teacher", "data/06_models/selected_teacher", "rlad", None,
     ["tokenizers differ", "vocab sizes", "same tokenizer"]),
]


@pytest.mark.slow  # needs the smoke run's data (the session's `kedro run --env smoke`)
@pytest.mark.parametrize(("model_dir", "pipeline", "params", "fragments"), [c[1:] for c in VOCAB_CASES],
                         ids=[c[0] for c in VOCAB_CASES])
def test_vocabulary_mismatch_fails_before_training(smoke_project, tmp_path, kedro_run, model_dir, pipeline, params,
                                                   fragments) -> None:
    project = tmp_path / "project"
    shutil.copytree(smoke_project, project, ignore=shutil.ignore_patterns("mlruns"))
    (project / "mlruns").mkdir()
    shutil.rmtree(project / model_dir, ignore_errors=True)
    _other_vocab_model(project / model_dir)
    args = ["run", "--env", "smoke", "--pipelines", pipeline] + (["--params", params] if params else [])
    out = kedro_run(project, *args)
    assert out.exit_code == 1 and out.train_steps == 0, (out.exit_code, out.train_steps, out.message[-3000:])
    for fragment in fragments:
        assert fragment in out.message, (fragment, out.message)


@pytest.mark.slow  # trains the smoke student_init on the file (~10 s)
def test_huge_row_is_dropped_counted_and_the_rest_trains(project_factory, kedro_run) -> None:
    """A 200k-character question (far over ``max_tokens``) is dropped by curation and counted as over budget; the
    other rows of the real data file train the student (the jsonl task's params reach the training verifier)."""
    import polars as pl

    project = project_factory()
    huge = b'{"question": "' + b"1+" * 100_000 + b'1", "answer": "100001"}\n'
    _jsonl_project(project, "huge.jsonl", _rows(40) + huge, "error")
    out = kedro_run(project, "run", "--env", "smoke", "--to-nodes", "train_student_init,summarise_curation")
    assert out.exit_code == 0, out.message
    stats = pl.read_csv(next((project / "data").rglob("curation_stats*.csv"))).filter(pl.col("subset") == "jsonl")
    assert (stats["generated"][0], stats["over_budget"][0], stats["kept"][0]) == (41, 1, 40)
    assert out.train_steps > 0 and (project / "data" / "06_models" / "student_init" / "model.safetensors").exists()
