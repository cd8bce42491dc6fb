"""rl-distill: distilling reasoning from an RL-trained teacher into a small student (GRPO, KL-KD, RLAD, R-TAP)."""

__version__ = "0.1.0"
