"""Group-relative outcome advantages, selected by registered name.

One job: turn the scalar rewards of N = B*G responses (grouped contiguously: rows g*G .. g*G+G-1 answer prompt g)
into one advantage per response, broadcast over its tokens by the loss. The teacher never enters here (RLAD,
arXiv 2602.22495, Sec. 3: same outcome reward and group advantage as GRPO).

- ``grpo``: A_i = (r_i - mean_g r) / (std_g r + 1e-6), population std (DeepSeekMath, arXiv 2402.03300, Sec. 4.1.2).
- ``dr_grpo``: A_i = r_i - mean_g r, no std division (Dr.GRPO, arXiv 2503.20783, Sec. 3.2: the std term up-weights
  too-easy and too-hard prompts).
- ``rloo``: A_i = r_i - mean_{j != i} r_j = G / (G - 1) * (r_i - mean_g r) (leave-one-out baseline; needs G >= 2).

A group whose rewards are all equal carries no signal: its advantages are set to exactly 0 (not a rounding residue)
and the fraction of such groups is returned as ``zero_adv_frac`` (the engine logs ``rollout/zero_adv_frac``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from rl_distill.registry import Registry

AdvantageEstimator = Callable[[Tensor], Tensor]  # rewards [B, G] -> advantages [B, G]
ADVANTAGE_ESTIMATORS: Registry[AdvantageEstimator] = Registry("advantage estimator")
GRPO_STD_EPS = 1e-6


@ADVANTAGE_ESTIMATORS.register("grpo")
def _grpo(rewards: Tensor) -> Tensor:
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    return centred / (rewards.std(dim=1, unbiased=False, keepdim=True) + GRPO_STD_EPS)


@ADVANTAGE_ESTIMATORS.register("dr_grpo")
def _dr_grpo(rewards: Tensor) -> Tensor:
    return rewards - rewards.mean(dim=1, keepdim=True)


@ADVANTAGE_ESTIMATORS.register("rloo")
def _rloo(rewards: Tensor) -> Tensor:
    group_size = rewards.shape[1]
    if group_size < 2:
        raise ValueError(f"rloo needs group_size >= 2 (a leave-one-out baseline), got group_size={group_size}.")
    leave_one_out_mean = (rewards.sum(dim=1, keepdim=True) - rewards) / (group_size - 1)
    return rewards - leave_one_out_mean


def compute_advantages(name: str, rewards: Tensor | Sequence[float],
                       group_size: int) -> tuple[Tensor, dict[str, Tensor]]:
    """Advantages [N] (fp32) for ``rewards`` [N] by estimator ``name``, and ``{"zero_adv_frac": 0-dim tensor}``.

    Raises :class:`~rl_distill.registry.UnknownNameError` for an unknown ``name`` (listing grpo, dr_grpo, rloo) and
    ``ValueError`` when ``rewards`` is not 1-D or N is not a multiple of ``group_size``.
    """
    estimator = ADVANTAGE_ESTIMATORS.get(name)
    rewards = torch.as_tensor(rewards)
    rewards = rewards.to(torch.promote_types(rewards.dtype, torch.float32))
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size={group_size!r} is invalid; it must be an integer >= 1.")
    if rewards.dim() != 1 or rewards.numel() % group_size != 0:
        raise ValueError(f"rewards must be 1-D [N] with N a multiple of group_size={group_size}, "
                         f"got shape {tuple(rewards.shape)}.")
    grouped = rewards.reshape(-1, group_size)  # [B, G]
    constant = grouped.amax(dim=1) == grouped.amin(dim=1)  # [B] groups with no learning signal
    advantages = torch.where(constant.unsqueeze(1), 0.0, estimator(grouped))
    zero_adv_frac = constant.float().mean() if constant.numel() else rewards.new_zeros(())
    return advantages.reshape(-1).float(), {"zero_adv_frac": zero_adv_frac.detach()}
