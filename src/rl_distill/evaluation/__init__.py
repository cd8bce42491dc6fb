"""Evaluation: per-sample scoring of trained models, pass@k / mean@k statistics, comparison tables, figures.

Kedro-free: the ``evaluation`` and ``reporting`` pipelines call into these modules.
"""
