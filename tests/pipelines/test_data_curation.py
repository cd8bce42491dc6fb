"""The data_curation pipeline: a slice on an in-memory catalog, split leakage, curation counts, config errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from rl_distill.curation.config import DataCurationConfig, SplitConfig, TaskSpec
from rl_distill.curation.curation import check_no_leakage, curate, split
from rl_distill.curation.generation import generate_raw, plan_chunks
from rl_distill.io.tokenizer_dataset import TokenizerDataset
from rl_distill.models.tokenizer import build_tokenizer
from rl_distill.parameters import PARAMETER_BLOCKS
from rl_distill.pipelines.data_curation.pipeline import create_pipeline
from rl_distill.tasks.base import Verdict
from rl_distill.tasks.registry import get_task
from rl_distill.typed_config import ConfigError, from_dict

CONF = Path(__file__).resolve().parents[2] / "conf"
SPLIT_COLUMNS = {"id", "task", "subset", "difficulty", "prompt", "trace", "trace_clean", "answer", "prompt_tokens",
                 "trace_tokens", "total_tokens", "params", "meta", "question_key", "has_correction"}
OUTPUTS = ("raw_examples", "curated_examples", "train_examples", "val_examples", "test_examples", "tokenizer",
           "curation_stats")


class _Kept(MemoryDataset):
    """A MemoryDataset the runner cannot release, so the test can read intermediate outputs."""

    def _release(self) -> None:
        pass


def _params(**overrides: Any) -> dict[str, Any]:
    params = {
        "tasks": [
            {"name": "knights_knaves", "difficulties": [2, 3], "n_per_difficulty": 150},
            {"name": "arithmetic", "difficulties": [1, 2], "n_per_difficulty": 60, "params": {"ops": ["+", "*"]}},
        ],
        "max_tokens": 200,
        "split": {"val_per_difficulty": 20, "test_per_difficulty": 20},
        "seed": 3,
        "self_correction_rate": 0.1,
        "log_to_mlflow": True,  # no active MLflow run in tests: logging is skipped
    }
    params.update(overrides)
    return params


def _run(params: dict[str, Any]) -> dict[str, Any]:
    catalog = DataCatalog({"params:data_curation": MemoryDataset(params), **{name: _Kept() for name in OUTPUTS}})
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in OUTPUTS}


@pytest.fixture(scope="module")
def outputs() -> dict[str, Any]:
    return _run(_params())


def test_slice_writes_splits_with_the_contract_columns(outputs: dict[str, Any]) -> None:
    for name in ("train_examples", "val_examples", "test_examples"):
        frame = outputs[name]
        assert set(frame.columns) >= SPLIT_COLUMNS, name
        assert frame.height > 0
        assert (frame["total_tokens"] <= 200).all()
        assert (frame["total_tokens"] == frame["prompt_tokens"] + frame["trace_tokens"] + 2).all()
    assert outputs["raw_examples"].height == 2 * 150 + 2 * 60


def test_no_question_in_two_splits(outputs: dict[str, Any]) -> None:
    keys = [set(zip(outputs[n]["task"], outputs[n]["question_key"]))
            for n in ("train_examples", "val_examples", "test_examples")]
    assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]
    ids = [set(outputs[n]["id"]) for n in ("train_examples", "val_examples", "test_examples")]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    curated = outputs["curated_examples"]
    assert sum(len(k) for k in keys) == curated.height == curated["question_key"].n_unique()


def test_stratified_sizes(outputs: dict[str, Any]) -> None:
    stats = outputs["curation_stats"].filter(pl.col("subset") != "all")
    for row in stats.iter_rows(named=True):
        if row["eval_scaled"]:
            # too few distinct rows (e.g. 60 arithmetic draws): val + test shrink to half the level, train keeps half
            assert row["val"] + row["test"] == row["kept"] // 2 and abs(row["val"] - row["test"]) <= 1
        else:
            assert (row["val"], row["test"]) == (20, 20)
        assert row["train"] == row["kept"] - row["val"] - row["test"]
    kk = stats.filter(pl.col("subset") == "knights_knaves")
    assert kk["val"].to_list() == [20, 20] and kk["test"].to_list() == [20, 20]
    for name, column in (("val_examples", "val"), ("test_examples", "test")):
        counts = outputs[name].group_by("subset", "difficulty").len().sort("subset", "difficulty")
        assert counts["len"].to_list() == stats.sort("subset", "difficulty")[column].to_list()


def test_statistics_table(outputs: dict[str, Any]) -> None:
    stats = outputs["curation_stats"]
    total = stats.filter(pl.col("subset") == "all").row(0, named=True)
    assert total["generated"] == 420
    parts = sum(outputs[n].height for n in ("train_examples", "val_examples", "test_examples"))
    assert total["kept"] == total["train"] + total["val"] + total["test"] == parts
    assert total["generated"] == total["duplicates"] + total["failed_verify"] + total["over_budget"] + total["kept"]
    assert total["failed_verify"] == 0
    per = stats.filter(pl.col("subset") != "all")
    assert per.height == 4
    assert {"tokens_p50", "tokens_p90", "tokens_p99", "tokens_max", "distinct_fraction"} <= set(stats.columns)


def test_every_reference_trace_verifies(outputs: dict[str, Any]) -> None:
    tasks = {"knights_knaves": get_task("knights_knaves"), "arithmetic": get_task("arithmetic")}
    for row in outputs["curated_examples"].iter_rows(named=True):
        assert tasks[row["task"]].verify(row["trace"], row["answer"]) is Verdict.CORRECT


def test_tokenizer_covers_the_data(outputs: dict[str, Any]) -> None:
    tok = outputs["tokenizer"]
    for text in (outputs["train_examples"]["prompt"] + outputs["train_examples"]["trace"]).to_list()[:200]:
        assert tok.unk_token_id not in tok(text)["input_ids"]


def test_saturated_level_shrinks_val_and_test() -> None:
    # K&K n=2 from 400 draws has far fewer than 400 distinct puzzles; asking 300 + 300 must keep half in train.
    params = _params(tasks=[{"name": "knights_knaves", "difficulties": [2], "n_per_difficulty": 400}],
                     split={"val_per_difficulty": 300, "test_per_difficulty": 300, "min_train_fraction": 0.5})
    out = _run(params)
    stats = out["curation_stats"].filter(pl.col("subset") == "knights_knaves").row(0, named=True)
    assert stats["duplicates"] > 0 and stats["eval_scaled"]
    assert abs(stats["val"] - stats["test"]) <= 1
    assert stats["train"] >= stats["kept"] // 2
    check_no_leakage({n: out[n] for n in ("train_examples", "val_examples", "test_examples")})


def test_dedupe_keeps_first_and_budget_drops_long_rows() -> None:
    cfg = from_dict(DataCurationConfig, _params(max_tokens=60), where="test")
    raw, _ = generate_raw(cfg)
    doubled = pl.concat([raw, raw])
    tasks = {spec.label: get_task(spec.name, **spec.params) for spec in cfg.tasks}
    tok = build_tokenizer("".join(t.alphabet for t in tasks.values()))
    curated, drops = curate(doubled, tok, tasks, max_tokens=60)
    assert drops["duplicates"].sum() >= raw.height  # every row of the second copy is a duplicate
    assert drops["over_budget"].sum() > 0
    assert (curated["total_tokens"] <= 60).all()


def test_leakage_guard_raises() -> None:
    frame = pl.DataFrame({"task": ["t"], "question_key": ["q"]})
    with pytest.raises(ValueError, match="in both train and test"):
        check_no_leakage({"train": frame, "val": frame.clear(), "test": frame})


def test_split_is_deterministic_and_seeded() -> None:
    frame = pl.DataFrame({"subset": ["s"] * 50, "difficulty": [1] * 50, "task": ["t"] * 50,
                          "question_key": [str(i) for i in range(50)]})
    cfg = SplitConfig(val_per_difficulty=5, test_per_difficulty=5)
    a, b, c = split(frame, cfg, seed=0), split(frame, cfg, seed=0), split(frame, cfg, seed=1)
    assert a["val"]["question_key"].to_list() == b["val"]["question_key"].to_list()
    assert a["val"]["question_key"].to_list() != c["val"]["question_key"].to_list()


@pytest.mark.slow  # starts two worker processes (spawn)
def test_generation_does_not_depend_on_workers_or_chunking_of_the_plan() -> None:
    cfg = from_dict(DataCurationConfig, _params(chunk_size=70), where="test")
    seeds = [c.seed for c in plan_chunks(cfg)]
    assert len(seeds) == len(set(seeds))  # 150 rows in chunks of 70 -> 3 chunks per K&K level, all distinct
    one, _ = generate_raw(cfg)
    two, _ = generate_raw(from_dict(DataCurationConfig, _params(chunk_size=70, workers=2), where="test"))
    assert one.equals(two)


def test_jsonl_bad_rows_are_counted_when_skipped(tmp_path: Path) -> None:
    path = tmp_path / "gsm.jsonl"
    rows = [json.dumps({"question": f"What is {i} + {i}?", "answer": f"{i}+{i} #### {2 * i}"}) for i in range(30)]
    path.write_text("\n".join([*rows[:10], '{"question": 1', *rows[10:]]) + "\n")
    task = {"name": "jsonl", "difficulties": [1], "n_per_difficulty": 100, "params": {"data_files": [str(path)]}}
    out = _run(_params(tasks=[task], on_bad_row="skip", split={"val_per_difficulty": 5, "test_per_difficulty": 5}))
    stats = out["curation_stats"].filter(pl.col("subset") == "jsonl").row(0, named=True)
    assert (stats["generated"], stats["bad_rows_skipped"], stats["kept"]) == (30, 1, 30)
    with pytest.raises(Exception, match=r"gsm\.jsonl:line 11: malformed JSON"):
        _run(_params(tasks=[task], on_bad_row="error"))


def test_tokenizer_dataset_round_trip(tmp_path: Path) -> None:
    dataset = TokenizerDataset(path=str(tmp_path / "tok"))
    assert not dataset.exists()
    tok = build_tokenizer("Ab")
    dataset.save(tok)
    assert dataset.exists()
    assert dataset.load().get_vocab() == tok.get_vocab()


def test_tokenizer_dataset_save_leaves_no_stale_chat_template(tmp_path: Path) -> None:
    """A tokenizer saved where another environment's tokenizer (with a chat template) was must load without one:
    a left-over chat_template.jinja templated every default prompt past max_tokens (curated 0 of 10000)."""
    dataset = TokenizerDataset(path=str(tmp_path / "tok"))
    templated = build_tokenizer("Ab")
    templated.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    dataset.save(templated)
    assert dataset.load().chat_template is not None
    dataset.save(build_tokenizer("Ab"))
    assert dataset.load().chat_template is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]


@pytest.mark.parametrize("env", ["base", "smoke"])
def test_parameter_files_validate(env: str) -> None:
    block = yaml.safe_load((CONF / env / "parameters_data_curation.yml").read_text())["data_curation"]
    PARAMETER_BLOCKS.get("data_curation")(block, f"conf/{env}")


@pytest.mark.parametrize(("change", "message"), [
    ({"max_token": 10}, "unknown key 'max_token'. Did you mean 'max_tokens'"),
    ({"split": {"val": 1}}, r"split: unknown key 'val'"),
    ({"tasks": [{"name": "sudoku"}]}, "unknown task 'sudoku'.*Valid names: arithmetic, jsonl, knights_knaves"),
    ({"tasks": [{"name": "knights_knaves", "params": {"depth": 2}}]}, "unknown key 'depth'"),
    ({"on_bad_row": "ignore"}, "on_bad_row='ignore' is not valid"),
    ({"tasks": [{"name": "arithmetic", "difficulties": [1]}, {"name": "arithmetic", "difficulties": [1]}]},
     "appears twice"),
])
def test_config_errors_name_the_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PARAMETER_BLOCKS.get("data_curation")({**_params(), **change}, "conf/base/parameters_data_curation.yml")


def test_task_spec_label() -> None:
    assert TaskSpec(name="knights_knaves", subset="nested").label == "nested"
    assert TaskSpec(name="knights_knaves").label == "knights_knaves"
