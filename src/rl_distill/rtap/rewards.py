"""R-TAP rewards: confidence-increase, final-confidence, format, answer and soft overlong length.

One job: turn per-trajectory facts (first-correct cycle M, per-cycle confidences, per-cycle format flags, kept length)
into the reward components of R-TAP (Lee, Chee, Ro, "Recursive Think-Answer Process for LLMs and VLMs",
arXiv 2603.02099, Sec. 3, reward definitions; method.md section 5):

    R_increase = 1                                              if M == 1
               = (1 / (M - 1)) * sum_{t=1}^{M-1} 1[Conf(t+1) > Conf(t)]   otherwise
    R_final    = 1[Conf(M) >= tau]                              (tau = 0.55)
    R_format   = 1[every kept cycle is well formed]
    R_answer   = 1[the final (kept) answer is correct]
    R_length   = 0 if L <= L_max - L_cache; (L_max - L_cache - L) / L_cache if L_max - L_cache < L <= L_max; -1 above
    R          = w_inc R_increase + w_fin R_final + w_fmt R_format + w_ans R_answer + w_len R_length   (all w = 1)

**[choice]** M is defined over the cycles present (a trajectory may end before T cycles), so M == 1 can also mean
"one wrong cycle, then stop". The paper's M == 1 case is "right at once" (without a correct cycle its M is T), so by
default (``increase_needs_correct``) a single-cycle trajectory whose answer is wrong gets R_increase = 0 (no
transition, nothing rose) rather than a free 1; set it false for the formula as written.

Cycles are 1-indexed in the paper and 0-indexed in tensors: ``conf[n, t - 1]`` is Conf(t). Shapes: N trajectories,
C = max cycles (the paper's T; we say C to keep T for response tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rl_distill.typed_config import ConfigError, check_range

REWARD_COMPONENTS = ("r_increase", "r_final", "r_format", "r_answer", "r_length")


@dataclass(frozen=True)
class RTAPRewardConfig:
    """Weights and thresholds of the R-TAP reward (arXiv 2603.02099; all weights 1, tau = 0.55 in the paper).

    ``max_length`` (L_max) and ``cache_length`` (L_cache) are in response tokens; the soft overlong penalty is DAPO's
    (arXiv 2503.14476, Eq. 13), which R-TAP reuses as R_length.
    """

    w_increase: float = 1.0
    w_final: float = 1.0
    w_format: float = 1.0
    w_answer: float = 1.0
    w_length: float = 1.0
    tau: float = 0.55
    max_length: int = 512
    cache_length: int = 128
    increase_needs_correct: bool = True

    def __post_init__(self) -> None:
        check_range("tau", self.tau, 0.0, 1.0)
        check_range("max_length", self.max_length, 1)
        check_range("cache_length", self.cache_length, 0)
        if self.cache_length > self.max_length:
            raise ConfigError(
                f"cache_length={self.cache_length} exceeds max_length={self.max_length}; "
                "the penalty ramp must fit inside the length budget (set cache_length <= max_length)."
            )


@dataclass(frozen=True)
class RTAPRewards:
    """Per-trajectory reward components, each a float tensor [N]; ``total`` is their weighted sum."""

    total: torch.Tensor
    r_increase: torch.Tensor
    r_final: torch.Tensor
    r_format: torch.Tensor
    r_answer: torch.Tensor
    r_length: torch.Tensor

    def metrics(self, prefix: str = "rollout/") -> dict[str, torch.Tensor]:
        """Batch means of every component (detached 0-dim tensors), e.g. ``rollout/r_increase``."""
        return {f"{prefix}{name}": getattr(self, name).detach().float().mean() for name in REWARD_COMPONENTS}


def _check_m(m: torch.Tensor, num_cycles: int) -> None:
    if m.numel() and (int(m.min()) < 1 or int(m.max()) > num_cycles):
        raise ValueError(f"M must be in [1, {num_cycles}] (1-indexed first-correct cycle), got {m.tolist()}")


def increase_reward(conf: torch.Tensor, m: torch.Tensor, correct: torch.Tensor | None = None) -> torch.Tensor:
    """R_increase (arXiv 2603.02099): fraction of the M-1 transitions before M where confidence strictly rises.

    ``conf`` [N, C] holds Conf(1..C) (entries past M are ignored, may be anything), ``m`` [N] int in [1, C].
    M == 1 (first cycle already correct) gets the full reward 1; with ``correct`` [N] bool given, an M == 1 row whose
    answer is wrong (a lone wrong cycle) gets 0 instead (see the module docstring).
    """
    n, c = conf.shape
    m = m.to(torch.long)
    _check_m(m, c)
    one = torch.ones(n, dtype=torch.float32, device=conf.device)
    at_once = one if correct is None else correct.to(conf.device).float()  # reward of an M == 1 row
    if c < 2:
        return at_once
    rises = (conf[:, 1:] > conf[:, :-1]).float()  # [N, C-1]: rises[:, t-1] = 1[Conf(t+1) > Conf(t)]
    t_idx = torch.arange(1, c, device=conf.device)  # transition t -> t+1 for t = 1..C-1
    counted = (t_idx.unsqueeze(0) < m.unsqueeze(1)).float()  # only t < M
    num_transitions = (m - 1).clamp(min=1).float()
    frac = (rises * counted).sum(dim=1) / num_transitions
    return torch.where(m == 1, at_once, frac)


def final_reward(conf: torch.Tensor, m: torch.Tensor, tau: float) -> torch.Tensor:
    """R_final = 1[Conf(M) >= tau] (arXiv 2603.02099); ``conf`` [N, C], ``m`` [N] 1-indexed -> [N] float."""
    m = m.to(torch.long)
    _check_m(m, conf.shape[1])
    conf_at_m = conf.gather(1, (m - 1).unsqueeze(1)).squeeze(1)
    return (conf_at_m >= tau).float()


def length_reward(lengths: torch.Tensor, max_length: int, cache_length: int) -> torch.Tensor:
    """Soft overlong penalty (DAPO Eq. 13, R-TAP's R_length): 0 up to L_max - L_cache, linear to -1 at L_max.

    ``lengths`` [N] kept response lengths in tokens. With L_cache = 0 it is a hard -1 above L_max.
    """
    lengths = lengths.float()
    start = float(max_length - cache_length)
    if cache_length == 0:
        return torch.where(lengths > max_length, -torch.ones_like(lengths), torch.zeros_like(lengths))
    ramp = (start - lengths) / float(cache_length)  # 0 at start, -1 at L_max
    return ramp.clamp(min=-1.0, max=0.0)


def rtap_rewards(
    *,
    conf: torch.Tensor,
    m: torch.Tensor,
    cycles_well_formed: torch.Tensor,
    num_kept_cycles: torch.Tensor,
    answer_correct: torch.Tensor,
    lengths: torch.Tensor,
    cfg: RTAPRewardConfig,
) -> RTAPRewards:
    """All R-TAP reward components for N trajectories (arXiv 2603.02099, Sec. 3).

    Args:
        conf: [N, C] Conf(t) of each kept cycle (entries past ``num_kept_cycles`` ignored).
        m: [N] first-correct cycle, 1-indexed (C, or the number of cycles present, when none is correct).
        cycles_well_formed: [N, C] bool, per-cycle format flag (entries past ``num_kept_cycles`` ignored).
        num_kept_cycles: [N] cycles kept after truncation (== M).
        answer_correct: [N] bool, the final kept answer is correct.
        lengths: [N] kept response length in tokens.
        cfg: weights, tau and the length budget.
    """
    c = conf.shape[1]
    present = torch.arange(c, device=conf.device).unsqueeze(0) < num_kept_cycles.to(torch.long).unsqueeze(1)
    # R_format: every kept cycle well formed (cycles past the kept ones are cut and carry no reward either).
    r_format = (cycles_well_formed.bool() | ~present).all(dim=1).float()
    r_increase = increase_reward(conf, m, answer_correct.bool() if cfg.increase_needs_correct else None)
    r_final = final_reward(conf, m, cfg.tau)
    r_answer = answer_correct.float()
    r_length = length_reward(lengths, cfg.max_length, cfg.cache_length)
    total = (
        cfg.w_increase * r_increase
        + cfg.w_final * r_final
        + cfg.w_format * r_format
        + cfg.w_answer * r_answer
        + cfg.w_length * r_length
    )
    return RTAPRewards(total=total, r_increase=r_increase, r_final=r_final, r_format=r_format,
                       r_answer=r_answer, r_length=r_length)
