"""Knights-and-Knaves logic puzzles (the RLAD paper's K&K benchmark), in a compact symbolic form or in English."""

from rl_distill.tasks.knights_knaves.generator import KnightsKnavesConfig
from rl_distill.tasks.knights_knaves.task import KnightsKnavesTask

__all__ = ["KnightsKnavesConfig", "KnightsKnavesTask"]
