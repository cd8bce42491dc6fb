"""Self-corrections in reference traces: a wrong step, the marker "wait," and the corrected step.

With probability ``rate`` per reasoning step, a generator writes the step with a wrong result first, then
:data:`CORRECTION_MARKER` and the right step. The marker is in the Oops lexicon
(:mod:`rl_distill.tasks.oops`), so the R-TAP "Oops" metric has real self-corrections to count in a teacher
trained on these traces.
"""

from __future__ import annotations

import random

CORRECTION_MARKER = "wait,"


def corrected_step(right: str, wrong: str, rng: random.Random, rate: float) -> str:
    """``right``, or with probability ``rate`` ``"<wrong> wait, <right>"``.

    >>> corrected_step("7+5+0=12", "7+5+0=13", random.Random(0), rate=1.0)
    '7+5+0=13 wait, 7+5+0=12'
    >>> corrected_step("7+5+0=12", "7+5+0=13", random.Random(0), rate=0.0)
    '7+5+0=12'
    """
    if rate > 0.0 and rng.random() < rate:
        return f"{wrong} {CORRECTION_MARKER} {right}"
    return right
