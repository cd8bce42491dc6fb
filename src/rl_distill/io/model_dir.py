"""A Kedro dataset for trained models: an HF model directory (safetensors + config + tokenizer) under data/06_models.

Nodes pass models between pipelines as :class:`ModelDir` handles (a path to a complete HF directory), never as
in-memory modules, so every pipeline can be run on its own (``kedro run --pipelines rlad`` reads the student_init and
teacher checkpoints from disk). Saving copies the directory into place atomically (temp dir + rename); loading checks
that the directory is a complete HF model and fails naming the path otherwise.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

REQUIRED_FILES = ("config.json", "model.safetensors")


def replace_dir(target: Path, write: Callable[[Path], Any]) -> None:
    """``write(tmp)`` fills a fresh sibling directory, which then replaces ``target`` whole: no file of the old
    directory survives, and ``target`` is never half-written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    write(tmp)
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class ModelDir:
    """A complete HF model directory (weights, config and tokenizer)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def check(self) -> ModelDir:
        """Raise ``FileNotFoundError`` naming the path if the directory is not a complete HF model."""
        if not self.path.is_dir():
            raise FileNotFoundError(f"model directory {self.path} does not exist")
        has_weights = (self.path / "model.safetensors").exists() or any(self.path.glob("model-*.safetensors"))
        if not (self.path / "config.json").exists() or not has_weights:
            raise FileNotFoundError(
                f"{self.path} is not a complete HF model directory (needs config.json and *.safetensors); "
                "point the parameter at a directory written by save_pretrained or by this project's training"
            )
        return self


class ModelDirDataset(AbstractDataset[ModelDir, ModelDir]):
    """``rl_distill.io.model_dir.ModelDirDataset`` with ``path: data/06_models/<name>``."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> ModelDir:
        try:
            return ModelDir(self._path).check()
        except FileNotFoundError as exc:
            raise DatasetError(f"{exc}. Run the pipeline that trains it first.") from exc

    def save(self, data: ModelDir) -> None:
        source = ModelDir(data.path).check().path.resolve()
        target = self._path.resolve()
        if source == target:
            return
        replace_dir(target, lambda tmp: shutil.copytree(source, tmp))

    def _exists(self) -> bool:
        try:
            ModelDir(self._path).check()
            return True
        except FileNotFoundError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
