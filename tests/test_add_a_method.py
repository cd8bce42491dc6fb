"""Adding a method is one loss module plus one YAML block: in a copy of the project, a new method appears in the
pipeline registry, trains and is evaluated in a smoke run, and gets its MLflow run and its report row."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DATA_LAYERS, ROOT

pytestmark = pytest.mark.slow

LOSS_MODULE = '''"""A test method: GRPO with the clip range widened to eps 0.5 / 0.5 (a real, different loss)."""

from dataclasses import dataclass

from rl_distill.core.losses.base import POLICY_LOSSES
from rl_distill.core.losses.grpo import GRPOConfig, GRPOLoss
from rl_distill.core.methods import MethodSpec, register_method


@dataclass(frozen=True)
class WideClipConfig(GRPOConfig):
    eps_low: float = 0.5
    eps_high: float = 0.5


@POLICY_LOSSES.register("wide_clip")
class WideClipLoss(GRPOLoss):
    name = "wide_clip"
    config_cls = WideClipConfig


register_method(MethodSpec("wide_clip", trainer="rl", loss="wide_clip", needs_teacher=False,
                           summary="GRPO with a wide clip (test method)"))
'''
YAML_BLOCK = "  wide_clip:\n    loss: {name: wide_clip}\n"


def _git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True).stdout


def _kedro(project: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    # The copy's own package shadows the installed (editable) one.
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(project / "src")}
    exe = Path(sys.executable).with_name("kedro")
    return subprocess.run([str(exe), *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_new_method_is_one_module_and_one_yaml_block(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(ROOT / "models", project / "models")
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy")
    for layer in DATA_LAYERS:  # untracked run outputs, not part of the change
        (project / "data" / layer).mkdir(parents=True)
    (project / "mlruns").mkdir()

    (project / "src" / "rl_distill" / "core" / "losses" / "wide_clip.py").write_text(LOSS_MODULE)
    with open(project / "conf" / "base" / "parameters_distill.yml", "a") as f:
        f.write(YAML_BLOCK)
    changed = _git(project, "status", "--porcelain", "--untracked-files=all", "--", "src", "conf").splitlines()
    assert len(changed) == 2, changed

    listed = _kedro(project, "registry", "list", timeout=300)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "wide_clip" in listed.stdout, listed.stdout

    run = _kedro(project, "run", "--env", "smoke", timeout=1500)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert (project / "data" / "06_models" / "wide_clip" / "model.safetensors").exists()
    report = (project / "data" / "08_reporting" / "comparison_table.md").read_text()
    assert "| wide_clip |" in report, report[:3000]

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(experiment_names=["rl-distill"], output_format="pandas")
        mine = runs[runs["tags.mlflow.runName"] == "wide_clip"]
        assert len(mine) == 1 and mine["tags.method"].iloc[0] == "wide_clip"
        history = mlflow.MlflowClient().get_metric_history(mine["run_id"].iloc[0], "train/loss")
        assert len(history) >= 2
    finally:
        mlflow.set_tracking_uri(None)
