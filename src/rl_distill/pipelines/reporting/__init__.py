"""The ``reporting`` pipeline: evaluation tables -> comparison tables (markdown + csv) and figures, in MLflow too."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
