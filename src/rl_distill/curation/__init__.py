"""Reasoning-data curation: the typed ``data_curation`` config, task generation, and polars curation/splitting."""
