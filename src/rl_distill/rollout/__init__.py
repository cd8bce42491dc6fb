"""Rollout engines behind one interface (``rl_distill.rollout.base``); importing the package registers them."""

from rl_distill.rollout import hf, vllm  # noqa: F401  (registers the "hf" and "vllm" engines)
