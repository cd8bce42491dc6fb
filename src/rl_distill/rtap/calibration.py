"""Quality of the R-TAP confidence generator on held-out cycles: AUROC and expected calibration error.

One job: score predicted probabilities ``p`` [K] against binary labels ``y`` [K] (1 = the cycle's answer is correct),
as R-TAP (arXiv 2603.02099) reports for its confidence generator C_phi (Sec. 3, stage 1).

- AUROC: probability that a random positive outscores a random negative, ties counted 1/2 (Mann-Whitney U / (P*Q)).
  Undefined (NaN) when only one class is present.
- AUROC interval (:func:`auroc_interval`): a percentile bootstrap that resamples whole questions with replacement
  (a cluster bootstrap: a question's cycles share its difficulty and are not independent draws), each resample's
  AUROC weighting every cycle by how often its question was drawn.
- ECE: ``sum_b |B_b| / K * |mean(p in b) - mean(y in b)|`` over ``num_bins`` equal-width bins of p on [0, 1]
  (bin b holds b/num_bins <= p < (b+1)/num_bins; p == 1 falls in the last bin). This is the binary-event
  reliability form: the predicted probability of "correct" against the observed frequency of "correct".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def auroc(p: torch.Tensor, y: torch.Tensor) -> float:
    """Area under the ROC curve of scores ``p`` [K] for labels ``y`` [K] in {0, 1}; NaN with a single class."""
    p = p.detach().double().flatten()
    y = y.detach().bool().flatten()
    pos, neg = p[y], p[~y]
    if pos.numel() == 0 or neg.numel() == 0:
        return math.nan
    return float(_pair_wins(pos, neg).sum() / (pos.numel() * neg.numel()))


def _pair_wins(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """[P, Q] H(pos_i - neg_j): 1 where the positive scores above the negative, 1/2 at a tie, else 0 (float64; its
    sums are exact counts). Pairwise comparison is O(P*Q); held-out sets here are hundreds to a few thousand cycles."""
    return (pos.unsqueeze(1) > neg.unsqueeze(0)).double() + 0.5 * (pos.unsqueeze(1) == neg.unsqueeze(0)).double()


def auroc_interval(p: torch.Tensor, y: torch.Tensor, groups: Sequence[str], *, level: float = 0.95,
                   n_resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """``(low, high)``: the ``level`` percentile-bootstrap interval of :func:`auroc` over ``groups`` (one id per
    row, e.g. the question a cycle answers) resampled with replacement; NaN with a single class.

    Resample b gives question g a count c_bg (multinomial); row k weighs w_bk = c_b,g(k), and
    ``AUROC_b = sum_{i pos, j neg} w_bi w_bj H(p_i - p_j) / (sum_i w_bi * sum_j w_bj)`` with H = 1 above, 1/2 at a tie.
    """
    p = p.detach().double().flatten()
    y = y.detach().bool().flatten()
    if len(groups) != p.numel():
        raise ValueError(f"{p.numel()} scores but {len(groups)} group ids")
    pos, neg = p[y], p[~y]
    if pos.numel() == 0 or neg.numel() == 0:
        return math.nan, math.nan
    index: dict[str, int] = {}
    row_group = torch.tensor([index.setdefault(g, len(index)) for g in groups])  # [K]
    gen = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, len(index), (n_resamples, len(index)), generator=gen)  # [B, G]
    counts = torch.zeros(n_resamples, len(index), dtype=torch.double).scatter_add_(
        1, draws, torch.ones(draws.shape, dtype=torch.double))  # [B, G]
    w = counts[:, row_group]  # [B, K]
    w_pos, w_neg = w[:, y], w[:, ~y]  # [B, P], [B, Q]
    num = ((w_pos @ _pair_wins(pos, neg)) * w_neg).sum(1)  # [B]
    den = w_pos.sum(1) * w_neg.sum(1)
    boot = num[den > 0] / den[den > 0]  # a resample without one of the classes has no AUROC
    alpha = (1.0 - level) / 2.0
    low, high = torch.quantile(boot, torch.tensor([alpha, 1.0 - alpha], dtype=torch.double)).tolist()
    return float(low), float(high)


def expected_calibration_error(p: torch.Tensor, y: torch.Tensor, num_bins: int = 10) -> float:
    """ECE of probabilities ``p`` [K] against labels ``y`` [K] with ``num_bins`` equal-width bins (default 10)."""
    p = p.detach().double().flatten()
    y = y.detach().double().flatten()
    if p.numel() == 0:
        return math.nan
    bins = (p * num_bins).floor().long().clamp(0, num_bins - 1)  # [K]
    count = torch.zeros(num_bins, dtype=torch.double).index_add_(0, bins, torch.ones_like(p))
    sum_p = torch.zeros(num_bins, dtype=torch.double).index_add_(0, bins, p)
    sum_y = torch.zeros(num_bins, dtype=torch.double).index_add_(0, bins, y)
    used = count > 0
    gap = (sum_p[used] / count[used] - sum_y[used] / count[used]).abs()
    return float((count[used] / p.numel() * gap).sum())


def confidence_metrics(p: torch.Tensor, y: torch.Tensor, prefix: str = "confidence/") -> dict[str, float]:
    """AUROC, ECE (10 bins), accuracy at 0.5, positive rate and mean probability, named ``confidence/<name>``."""
    y_f = y.detach().double().flatten()
    p_f = p.detach().double().flatten()
    acc = float(((p_f >= 0.5).double() == y_f).double().mean()) if p_f.numel() else math.nan
    return {
        f"{prefix}auroc": auroc(p_f, y_f),
        f"{prefix}ece": expected_calibration_error(p_f, y_f, 10),
        f"{prefix}accuracy": acc,
        f"{prefix}positive_rate": float(y_f.mean()) if y_f.numel() else math.nan,
        f"{prefix}mean_prob": float(p_f.mean()) if p_f.numel() else math.nan,
        f"{prefix}num_cycles": float(p_f.numel()),
    }
