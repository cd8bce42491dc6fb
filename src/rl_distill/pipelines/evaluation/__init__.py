"""The ``evaluation`` pipeline: trained checkpoints -> per-sample records, ``eval/*`` MLflow metrics, tidy summary."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
