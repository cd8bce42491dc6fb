"""The ``offline_kd`` pipeline (see ``rl_distill.pipelines.distill``)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
