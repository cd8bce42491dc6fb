"""The "Oops" lexicon: self-correction phrases counted per response (R-TAP, method.md section 5).

The R-TAP paper reports "Oops"-style self-corrections per response without giving its word list; this project
fixes one [choice] and reports it beside every number. Matching is case-insensitive on word boundaries, so
"awaited" is not a "wait".
"""

from __future__ import annotations

import re

#: The phrases counted as self-corrections (method.md section 5). Report this tuple beside any Oops number.
OOPS_LEXICON: tuple[str, ...] = (
    "oops",
    "wait",
    "hmm",
    "let me try again",
    "let me re-check",
    "let me reconsider",
    "i made a mistake",
    "actually",
)

_PATTERN = re.compile(
    r"\b(?:" + "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in OOPS_LEXICON) + r")\b", re.IGNORECASE)


def count_oops(text: str) -> int:
    """Number of lexicon matches in ``text`` (case-insensitive, whole words, non-overlapping).

    >>> count_oops("A:b=1 wait, A:b=0 x")
    1
    >>> count_oops("Hmm. Actually, WAIT: let me  re-check. Oops!")
    5
    >>> count_oops("awaited hmmm")
    0
    """
    return len(_PATTERN.findall(text))
