"""Shipping a trained model with its provenance, and catching a corrupted file or a changed config."""

from __future__ import annotations

import json

import pytest

from rl_distill.models.shipped import PROVENANCE, sha256_file, ship_model, verify_shipped


def _model_dir(tmp_path):
    src = tmp_path / "trained"
    src.mkdir()
    (src / "config.json").write_text('{"hidden_size": 8}')
    (src / "model.safetensors").write_bytes(b"weights-v1")
    (src / "mlflow_run.json").write_text('{"run_id": "abc"}')  # local run state: not shipped
    return src


def test_ship_then_verify(tmp_path) -> None:
    params = {"teacher": {"model": {"hidden_size": 8}, "sft": {"total_steps": 3000}}}
    record = ship_model(_model_dir(tmp_path), tmp_path / "shipped", params=params, command="kedro run",
                        metrics={"val/accuracy": 1.0})
    dest = tmp_path / "shipped"
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "model.safetensors", PROVENANCE]
    assert record["sha256"] == {"model.safetensors": sha256_file(dest / "model.safetensors")}
    assert json.loads((dest / PROVENANCE).read_text())["metrics"] == {"val/accuracy": 1.0}
    assert verify_shipped(dest, params)["command"] == "kedro run"


def test_a_changed_config_or_file_is_refused(tmp_path) -> None:
    params = {"teacher": {"sft": {"total_steps": 3000}}, "data_curation": {"seed": 0}}
    dest = tmp_path / "shipped"
    ship_model(_model_dir(tmp_path), dest, params=params, command="kedro run")
    with pytest.raises(ValueError, match=r"keys \['teacher'\] differ"):
        verify_shipped(dest, {**params, "teacher": {"sft": {"total_steps": 800}}})
    verify_shipped(dest, {"teacher": params["teacher"]}, keys=("teacher",))  # only the teacher block compared
    (dest / "model.safetensors").write_bytes(b"weights-v2")
    with pytest.raises(ValueError, match="corrupted or was replaced"):
        verify_shipped(dest, params)
    with pytest.raises(ValueError, match="no provenance.json"):
        verify_shipped(tmp_path / "trained", params)
