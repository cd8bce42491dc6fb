"""Shared test configuration: no telemetry, CUDA-only tests skip cleanly, an isolated MLflow store per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (the `gpu` marker); none is present")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
