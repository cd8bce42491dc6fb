"""Imports flow one way (../shared/docs/architecture.md): only the Kedro/MLflow/Optuna rooms import those packages,
``core/`` imports only torch and ``tasks/`` only the standard library (plus math-verify / datasets for real data)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rl_distill"
FRAMEWORK = {"kedro", "kedro_datasets", "kedro_mlflow", "kedro_viz", "mlflow", "optuna"}
ALLOWED_FRAMEWORK_ROOMS = ("pipelines/", "io/", "hooks.py", "settings.py", "pipeline_registry.py", "__main__.py",
                           "tracking/", "tuning/")
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_framework_imports_only_in_allowed_rooms(path: Path) -> None:
    rel = _rel(path)
    if rel.startswith(ALLOWED_FRAMEWORK_ROOMS):
        return
    bad = [(line, mod) for line, mod in _imports(path) if mod.split(".")[0] in FRAMEWORK]
    assert not bad, f"{rel} imports {bad}: only {ALLOWED_FRAMEWORK_ROOMS} may import kedro/mlflow/optuna"


@pytest.mark.parametrize("path", [p for p in _modules() if _rel(p).startswith("core/")], ids=_rel)
def test_core_imports_only_torch(path: Path) -> None:
    allowed = STDLIB | {"torch", "rl_distill"}
    bad = [(line, mod) for line, mod in _imports(path) if mod.split(".")[0] not in allowed]
    inner = [(line, mod) for line, mod in _imports(path)
             if mod.startswith("rl_distill.") and not mod.startswith(
                 ("rl_distill.core", "rl_distill.registry", "rl_distill.typed_config"))]
    assert not bad and not inner, f"core/ must stay pure torch: {_rel(path)} imports {bad + inner}"


@pytest.mark.parametrize("path", [p for p in _modules() if _rel(p).startswith("tasks/")], ids=_rel)
def test_tasks_import_only_stdlib(path: Path) -> None:
    allowed = STDLIB | {"rl_distill", "math_verify", "datasets"}
    bad = [(line, mod) for line, mod in _imports(path) if mod.split(".")[0] not in allowed]
    inner = [(line, mod) for line, mod in _imports(path)
             if mod.startswith("rl_distill.") and not mod.startswith(
                 ("rl_distill.tasks", "rl_distill.registry", "rl_distill.typed_config"))]
    assert not bad and not inner, f"tasks/ must stay pure Python: {_rel(path)} imports {bad + inner}"


def test_scanner_sees_a_violation(tmp_path: Path) -> None:
    # The checks above are only worth something if the scanner finds imports in all their spellings.
    probe = tmp_path / "probe.py"
    probe.write_text("import mlflow.tracking\nfrom optuna import trial\ndef f():\n    import kedro\n")
    assert [m for _, m in _imports(probe)] == ["mlflow.tracking", "optuna", "kedro"]
