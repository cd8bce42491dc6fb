"""Kedro pipelines: wiring + thin adapters. Each subpackage exports ``create_pipeline`` (found by Kedro's
``find_pipelines``); the distillation methods share one template in ``distill/``."""
