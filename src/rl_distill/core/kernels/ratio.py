"""The ratio kernel: per-token clipped surrogate and clip metrics, compiled with an eager twin.

One job: given student, old-policy and anchor log-probs, advantages and the response mask, compute

    log_ratio_t = logprobs_S - log_anchor_t                       # GRPO: anchor = pi_old; RLAD: the mixture
    ratio_t     = exp(log_ratio_t)
    surrogate_t = min(ratio_t * A, clip(ratio_t, 1 - eps_low, 1 + eps_high) * A)

(PPO/GRPO surrogate, DeepSeekMath arXiv 2402.03300 Eq. 3; clip-higher from DAPO arXiv 2503.14476 Sec. 3.1;
RLAD's TRRD ratio, arXiv 2602.22495 Eq. 3-5, is this with a mixture anchor) and, optionally, dual-clip
(Ye et al. 2020, arXiv 1912.09729): for A < 0 the surrogate is bounded below by ``dual_clip * A``.

Metrics (detached 0-dim, over real tokens): ``clipfrac_low`` (A < 0 and ratio < 1 - eps_low: the clipped branch
wins, zero gradient), ``clipfrac_high`` (A > 0 and ratio > 1 + eps_high), ``clipfrac_dual`` (A < 0 and
ratio > dual_clip), ``ratio_mean``, ``ratio_max`` and ``approx_kl`` = k3 estimate of KL(pi_old || pi_S) from the
rollout tokens (which were sampled from pi_old): exp(d) - 1 - d with d = logprobs_S - logprobs_old.

Implementation notes:
- One body, :func:`_surrogate_kernel`, is both the eager reference and, through ``torch.compile(fullgraph=True,
  dynamic=True)``, the fast path. It has no ``.item()`` and no data-dependent Python branch.
- No recompile when response lengths vary: the kernel is compiled with dynamic shapes; duck sizing (which would tie
  N and T into one symbol whenever they happen to be equal, and recompile when they later differ) is switched off
  around the call; inputs that are views are cloned (a view carries its base's shape into the guards); N < 2 or
  T < 2 is padded (masked) up to 2 because sizes 0 and 1 are always specialised. Metric sums accumulate in fp64
  (exact enough, and it avoids inductor's size-dependent fp32 accumulation guard at 4096 elements).
- log_ratio is zeroed on padding (``torch.where``, so even inf/NaN there cannot leak into values or gradients) and
  clamped to +-:data:`LOG_RATIO_LIMIT` (gradient 0 beyond) so the surrogate stays finite for any finite inputs.
- Everything is computed in fp32 (fp64 stays fp64); the surrogate is returned in that dtype.
- If compilation fails at run time, the call falls back to eager and logs one warning; later calls stay eager.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from rl_distill.core.types import BatchError, as_bool_mask

logger = logging.getLogger(__name__)

LOG_RATIO_LIMIT = 20.0  # exp(20) ~ 4.9e8; verl uses the same bound
MIN_SIZE = 2  # the compiler specialises sizes 0 and 1; smaller N or T is padded up to this
METRIC_NAMES = ("clipfrac_low", "clipfrac_high", "clipfrac_dual", "ratio_mean", "ratio_max", "approx_kl")


@dataclass(frozen=True)
class SurrogateOut:
    """``surrogate`` [N, T] (0 on padding, differentiable) and the detached 0-dim ``metrics`` named above."""

    surrogate: Tensor
    metrics: dict[str, Tensor]


def _surrogate_kernel(logprobs: Tensor, old_logprobs: Tensor, anchor_logprobs: Tensor, advantages: Tensor,
                      mask: Tensor, eps_low: float, eps_high: float, dual_clip: float | None) -> tuple[Tensor, ...]:
    """The kernel body: [N, T] inputs, ``advantages`` [N, 1] or [N, T], ``mask`` bool.

    Returns (surrogate [N, T], *metrics in :data:`METRIC_NAMES` order).
    """
    dtype = torch.promote_types(logprobs.dtype, torch.float32)
    logprobs, old_logprobs = logprobs.to(dtype), old_logprobs.to(dtype)
    anchor_logprobs, advantages = anchor_logprobs.to(dtype), advantages.to(dtype)
    zero = torch.zeros((), dtype=dtype, device=logprobs.device)

    log_ratio = torch.where(mask, logprobs - anchor_logprobs, zero).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
    ratio = torch.exp(log_ratio)  # [N, T]
    adv = torch.where(mask, advantages, zero)  # [N, T]
    clipped_ratio = ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    surrogate = torch.minimum(ratio * adv, clipped_ratio * adv)
    if dual_clip is not None:  # static (trace-time) branch
        surrogate = torch.where(adv < 0, torch.maximum(surrogate, dual_clip * adv), surrogate)
    surrogate = torch.where(mask, surrogate, zero)

    # Metrics: detached, over real tokens, summed in fp64; an all-masked batch gives 0s.
    ratio_d, adv_d = ratio.detach(), adv.detach()
    count = mask.sum().clamp(min=1).to(torch.float64)

    def frac(selected: Tensor) -> Tensor:
        return (selected.sum().to(torch.float64) / count).to(dtype)

    clip_low = frac(mask & (adv_d < 0) & (ratio_d < 1.0 - eps_low))
    clip_high = frac(mask & (adv_d > 0) & (ratio_d > 1.0 + eps_high))
    clip_dual = zero if dual_clip is None else frac(mask & (adv_d < 0) & (ratio_d > dual_clip))
    ratio_real = torch.where(mask, ratio_d, zero)
    ratio_mean = (ratio_real.sum(dtype=torch.float64) / count).to(dtype)
    d_old = torch.where(mask, logprobs.detach() - old_logprobs, zero).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
    approx_kl = ((torch.expm1(d_old) - d_old).sum(dtype=torch.float64) / count).to(dtype)
    return surrogate, clip_low, clip_high, clip_dual, ratio_mean, ratio_real.amax(), approx_kl


@functools.cache
def compiled_kernel():
    """``torch.compile`` of the kernel body, built on first use (importing dynamo costs about a second)."""
    return torch.compile(_surrogate_kernel, fullgraph=True, dynamic=True)


def _no_duck_shapes() -> contextlib.AbstractContextManager:
    """Trace without duck sizing (equal N and T must not become one symbol); a no-op if torch lacks the knob."""
    try:
        from torch.fx.experimental import _config as fx_config

        return fx_config.patch(use_duck_shape=False)
    except (ImportError, AttributeError):  # pragma: no cover - other torch versions
        return contextlib.nullcontext()


class _Fallback:
    """Process-wide memory that compilation failed, so the warning is logged once."""

    failed = False


def _check(logprobs: Tensor, old_logprobs: Tensor, anchor_logprobs: Tensor, advantages: Tensor,
           mask: Tensor, eps_low: float, eps_high: float, dual_clip: float | None) -> None:
    if logprobs.dim() != 2:
        raise BatchError(f"logprobs must be [N, T], got shape {tuple(logprobs.shape)}.")
    for name, tensor in (("old_logprobs", old_logprobs), ("anchor_logprobs", anchor_logprobs),
                         ("response_mask", mask)):
        if tuple(tensor.shape) != tuple(logprobs.shape):
            raise BatchError(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(logprobs.shape)} [N, T].")
    if tuple(advantages.shape) not in (tuple(logprobs.shape[:1]), tuple(logprobs.shape)):
        raise BatchError(f"advantages has shape {tuple(advantages.shape)}; expected [N] or [N, T] for logprobs "
                         f"{tuple(logprobs.shape)}.")
    if eps_low < 0 or eps_low >= 1 or eps_high < 0:
        raise ValueError(f"eps_low={eps_low!r}, eps_high={eps_high!r} are invalid; need 0 <= eps_low < 1 and "
                         f"eps_high >= 0.")
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"dual_clip={dual_clip!r} is invalid; it must be > 1 (e.g. 3.0) or None.")


def clipped_surrogate(logprobs: Tensor, old_logprobs: Tensor, anchor_logprobs: Tensor, advantages: Tensor,
                      mask: Tensor, *, eps_low: float = 0.2, eps_high: float = 0.28, dual_clip: float | None = None,
                      compile: bool = True) -> SurrogateOut:
    """Per-token clipped surrogate [N, T] and clip metrics; compiled unless ``compile=False``.

    Args:
        logprobs: [N, T] student log-probs (requires grad).
        old_logprobs: [N, T] log-probs of the sampling policy (only for ``approx_kl``).
        anchor_logprobs: [N, T] log of the ratio's denominator: ``old_logprobs`` for GRPO, the teacher/old mixture
            for RLAD. It may carry gradient (RLAD's ``hard`` teacher clamp does); it flows through.
        advantages: [N] (broadcast over tokens) or [N, T].
        mask: [N, T] response mask (bool, or float read as nonzero = real).
        eps_low, eps_high: clip range [1 - eps_low, 1 + eps_high].
        dual_clip: lower bound ``dual_clip * A`` for A < 0 (> 1), or None.
        compile: use the ``torch.compile``'d kernel (falls back to eager, with one warning, if compiling fails).
    """
    _check(logprobs, old_logprobs, anchor_logprobs, advantages, mask, eps_low, eps_high, dual_clip)
    rows, cols = logprobs.shape  # [N, T]
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)  # [N, 1], broadcast inside the kernel
    pad_rows, pad_cols = max(0, MIN_SIZE - rows), max(0, MIN_SIZE - cols)
    done: dict[int, Tensor] = {}  # id -> prepared; GRPO passes old as anchor, and that identity must survive

    def prepare(t: Tensor, broadcast_cols: bool = False) -> Tensor:
        key = id(t)
        if key not in done:
            if pad_rows or pad_cols:  # masked padding: sizes 0 and 1 would each cost a compile
                t = F.pad(t, (0, 0 if broadcast_cols else pad_cols, 0, pad_rows))
            done[key] = t.clone() if t._is_view() else t
        return done[key]

    inputs = [prepare(logprobs), prepare(old_logprobs), prepare(anchor_logprobs),
              prepare(advantages, broadcast_cols=advantages.shape[1] == 1), prepare(as_bool_mask(mask))]
    args = (*inputs, float(eps_low), float(eps_high), None if dual_clip is None else float(dual_clip))

    outputs = None
    if compile and not _Fallback.failed:
        try:
            with _no_duck_shapes():
                outputs = compiled_kernel()(*args)
        except Exception as exc:  # compiler missing, backend error, ...: correctness first
            _Fallback.failed = True
            logger.warning("torch.compile of the ratio kernel failed (%s: %s); using the eager kernel from now on.",
                           type(exc).__name__, exc)
    if outputs is None:
        outputs = _surrogate_kernel(*args)
    surrogate = outputs[0][:rows, :cols]
    return SurrogateOut(surrogate, dict(zip(METRIC_NAMES, (m.detach() for m in outputs[1:]))))


def clipped_surrogate_eager(logprobs: Tensor, old_logprobs: Tensor, anchor_logprobs: Tensor, advantages: Tensor,
                            mask: Tensor, *, eps_low: float = 0.2, eps_high: float = 0.28,
                            dual_clip: float | None = None) -> SurrogateOut:
    """The eager twin of :func:`clipped_surrogate` (same body, never compiled): the reference in tests."""
    return clipped_surrogate(logprobs, old_logprobs, anchor_logprobs, advantages, mask, eps_low=eps_low,
                             eps_high=eps_high, dual_clip=dual_clip, compile=False)
