"""The teacher shipped in the repository is the one conf/base describes: same parameter block, same architecture,
weights hashing to its provenance, and the project's vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _base_params() -> dict:
    from kedro.config import OmegaConfigLoader

    from rl_distill.settings import CONFIG_LOADER_ARGS

    return OmegaConfigLoader(conf_source=str(ROOT / "conf"), env="base", **{**CONFIG_LOADER_ARGS,
                                                                            "default_run_env": "base"})["parameters"]


def test_shipped_teacher_matches_the_teacher_config() -> None:
    from rl_distill.models.shipped import verify_shipped
    from rl_distill.pipelines.teacher.nodes import shipped_params

    params = _base_params()
    shipped = params["teacher"].get("shipped")
    if shipped is None:
        pytest.skip("conf/base trains its teacher in the run (teacher.shipped: null)")
    dest = ROOT / shipped
    record = verify_shipped(dest, {"teacher": shipped_params(params["teacher"], {})["teacher"]}, keys=("teacher",))
    config = json.loads((dest / "config.json").read_text())
    model = params["teacher"]["model"]
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings"):
        assert config[key] == model[key], key
    assert record["params"]["data_curation"] == params["data_curation"]
    tokenizer = json.loads((dest / "tokenizer.json").read_text())
    assert config["vocab_size"] >= len(tokenizer["model"]["vocab"])
