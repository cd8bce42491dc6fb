"""Shared test configuration: no telemetry, CUDA-only tests skip cleanly, an isolated MLflow store per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models are overhead-bound: one thread per process is faster than two fighting over shared cores, and the
# `kedro` subprocesses some tests start inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (the `gpu` marker); none is present")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


# --- a throwaway copy of the Kedro project for tests that run `kedro` (keeps data/ and mlruns/ clean) ---

ROOT = Path(__file__).resolve().parents[1]
DATA_LAYERS = ("01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input", "06_models",
               "07_model_output", "08_reporting")


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "conf", dest / "conf", ignore=shutil.ignore_patterns("local"))
    (dest / "conf" / "local").mkdir(exist_ok=True)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(ROOT / "models", dest / "models", dirs_exist_ok=True)  # the shipped teacher
    (dest / "src").mkdir(exist_ok=True)  # the package itself is imported from the installed (editable) project
    for layer in DATA_LAYERS:
        (dest / "data" / layer).mkdir(parents=True, exist_ok=True)
    (dest / "mlruns").mkdir(exist_ok=True)
    return dest


def kedro(project: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the kedro CLI of this interpreter's environment in ``project``."""
    # COLUMNS=80: rich wraps log lines at a fixed width, the narrowest usual terminal (line counts are comparable)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1", "COLUMNS": "80"}
    exe = Path(sys.executable).with_name("kedro")
    return subprocess.run([str(exe), *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def project_factory(tmp_path: Path):
    """``project_factory()`` -> path of a fresh project copy under tmp_path."""
    counter = iter(range(1000))
    return lambda: copy_project(tmp_path / f"project{next(counter)}")


@pytest.fixture
def run_kedro():
    return kedro


@pytest.fixture(scope="session")
def smoke_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``kedro run --env smoke`` of the whole default DAG in a project copy, shared by every test that needs it."""
    project = copy_project(tmp_path_factory.mktemp("smoke") / "project")
    result = kedro(project, "run", "--env", "smoke", timeout=1500)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    (project / "kedro_run.stdout").write_text(result.stdout)  # the end-of-run summary (tests/test_smoke_run.py)
    (project / "kedro_run.stderr").write_text(result.stderr)  # the progress bars
    return project
