"""student_init.sft_data: which curated rows the student's cold-start SFT sees (a teacher/student data asymmetry)."""

from __future__ import annotations

import polars as pl
import pytest

from rl_distill.pipelines.model_configs import SFTData, StudentInitParams
from rl_distill.pipelines.student_init.nodes import validate_student_init
from rl_distill.typed_config import ConfigError, from_dict


def _split() -> pl.DataFrame:
    prompts = ["A:B", "A:a>B", "A:(a|B)", "A:b>a", "A:b&a", "A:(B>a)", "A:b>B", "A:a^b"]
    subsets = ["kk", "kk", "nested", "kk", "kk", "nested", "kk", "kk"]
    return pl.DataFrame({"id": [f"r{i}" for i in range(8)], "subset": subsets, "prompt": prompts})


def test_the_default_keeps_every_row():
    split = _split()
    assert SFTData().select(split).equals(split)
    assert from_dict(StudentInitParams, {}).sft_data == SFTData()


def test_subsets_keep_only_the_named_subsets():
    assert SFTData(subsets=("kk",)).select(_split())["id"].to_list() == ["r0", "r1", "r3", "r4", "r6", "r7"]
    assert SFTData(subsets=("nested",)).select(_split())["id"].to_list() == ["r2", "r5"]


def test_withhold_drops_the_rows_whose_prompt_contains_the_string():
    kept = SFTData(withhold=">").select(_split())
    assert kept["id"].to_list() == ["r0", "r2", "r4", "r7"]  # '>' matched literally, not as a regex
    assert SFTData(subsets=("kk",), withhold=">").select(_split())["id"].to_list() == ["r0", "r4", "r7"]


def test_withhold_keep_draws_a_seeded_fraction_of_the_withheld_rows():
    big = pl.DataFrame({"id": [f"r{i}" for i in range(4000)], "subset": ["kk"] * 4000,
                        "prompt": ["A:a>B" if i % 2 else "A:B" for i in range(4000)]})
    kept = SFTData(withhold=">", withhold_keep=0.25, seed=3).select(big)
    again = SFTData(withhold=">", withhold_keep=0.25, seed=3).select(big)
    assert kept.equals(again)
    withheld = kept.filter(pl.col("prompt").str.contains(">", literal=True)).height
    assert kept.height - withheld == 2000           # every row without '>' stays
    assert 440 <= withheld <= 560                   # 2000 x 0.25 = 500, binomial sd 19
    assert SFTData(withhold=">", withhold_keep=1.0).select(big).height == 4000
    other = SFTData(withhold=">", withhold_keep=0.25, seed=4).select(big)
    assert not other.equals(kept)


def test_bad_selections_fail_naming_the_value_and_the_fix():
    with pytest.raises(ConfigError, match=r"\['other'\] not in the train split, whose subsets are \['kk', 'nested'\]"):
        SFTData(subsets=("kk", "other")).select(_split())
    with pytest.raises(ConfigError, match="leaves no training row"):
        SFTData(subsets=("nested",), withhold="(").select(_split())
    with pytest.raises(ConfigError, match=r"subsets=\[\]: an empty list"):
        validate_student_init({"sft_data": {"subsets": []}}, "student_init")
    with pytest.raises(ConfigError, match="withhold_keep=1.5"):
        validate_student_init({"sft_data": {"withhold": ">", "withhold_keep": 1.5}}, "student_init")
    with pytest.raises(ConfigError, match="withhold=''"):
        validate_student_init({"sft_data": {"withhold": ""}}, "student_init")
    with pytest.raises(ConfigError, match="unknown key 'withold'"):
        validate_student_init({"sft_data": {"withold": ">"}}, "student_init")
