"""The training engine: typed configs, one training loop for every method, checkpoints that resume.

Entry point: :func:`rl_distill.engine.trainer.train`; configs in :mod:`rl_distill.engine.config`.
"""
