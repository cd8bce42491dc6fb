"""Quality of the R-TAP confidence generator on held-out cycles: AUROC and expected calibration error.

One job: score predicted probabilities ``p`` [K] against binary labels ``y`` [K] (1 = the cycle's answer is correct),
as R-TAP (arXiv 2603.02099) reports for its confidence generator C_phi (Sec. 3, stage 1).

- AUROC: probability that a random positive outscores a random negative, ties counted 1/2 (Mann-Whitney U / (P*Q)).
  Undefined (NaN) when only one class is present.
- ECE: ``sum_b |B_b| / K * |mean(p in b) - mean(y in b)|`` over ``num_bins`` equal-width bins of p on [0, 1]
  (bin b holds b/num_bins <= p < (b+1)/num_bins; p == 1 falls in the last bin). This is the binary-event
  reliability form: the predicted probability of "correct" against the observed frequency of "correct".
"""

from __future__ import annotations

import math

import torch


def auroc(p: torch.Tensor, y: torch.Tensor) -> float:
    """Area under the ROC curve of scores ``p`` [K] for labels ``y`` [K] in {0, 1}; NaN with a single class."""
    p = p.detach().double().flatten()
    y = y.detach().bool().flatten()
    pos, neg = p[y], p[~y]
    if pos.numel() == 0 or neg.numel() == 0:
        return math.nan
    # Pairwise comparison is O(P*Q); held-out sets here are small (hundreds to a few thousand cycles).
    greater = (pos.unsqueeze(1) > neg.unsqueeze(0)).double().sum()
    ties = (pos.unsqueeze(1) == neg.unsqueeze(0)).double().sum()
    return float((greater + 0.5 * ties) / (pos.numel() * neg.numel()))


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
