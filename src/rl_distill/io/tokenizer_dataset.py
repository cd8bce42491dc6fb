"""A Kedro dataset for an HF tokenizer directory (``save_pretrained`` / ``AutoTokenizer.from_pretrained``).

kedro-datasets' ``huggingface`` datasets cover hub data sets and pipelines, not tokenizers, hence this small class.
Catalog use: ``type: rl_distill.io.tokenizer_dataset.TokenizerDataset`` with ``path: data/06_models/...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from rl_distill.io.model_dir import replace_dir


class TokenizerDataset(AbstractDataset[Any, Any]):
    """Saves a tokenizer to ``path`` with ``save_pretrained`` (replacing the directory); loads it with
    ``AutoTokenizer.from_pretrained``."""

    def __init__(self, path: str, load_args: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self._load_args = dict(load_args or {})
        self.metadata = metadata

    def load(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self._path), **self._load_args)

    def save(self, data: Any) -> None:
        """Write into a fresh directory and swap it in: ``save_pretrained`` into an existing directory leaves files it
        does not write (a ``chat_template.jinja`` saved by another environment's tokenizer would then be loaded with
        this one and template every prompt)."""
        replace_dir(self._path, lambda tmp: data.save_pretrained(str(tmp)))

    def _exists(self) -> bool:
        return (self._path / "tokenizer_config.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "load_args": self._load_args}
