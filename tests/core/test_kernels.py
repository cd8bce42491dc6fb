"""The ratio kernel: hand-computed surrogate, compiled == eager (values, gradients, metrics), recompiles, fallback."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch._dynamo.utils import counters

from rl_distill.core.kernels import ratio as ratio_module
from rl_distill.core.kernels.ratio import METRIC_NAMES, clipped_surrogate, clipped_surrogate_eager

from .batches import random_batch

# torch's own compile machinery emits this deprecation; it is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

# Ratios (row 0, A = +1): 1.0, 1.5, 0.5 ; (row 1, A = -2): 1.1, 0.7, padding. eps = (0.2, 0.28) -> clip [0.8, 1.28]
RATIOS = torch.tensor([[1.0, 1.5, 0.5], [1.1, 0.7, 1.0]])
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
ADV = torch.tensor([1.0, -2.0])


def _hand_batch():
    logprobs = torch.full((2, 3), -1.0, requires_grad=True)
    old = logprobs.detach() - RATIOS.log()
    return logprobs, old


def test_hand_computed_surrogate_and_metrics():
    logprobs, old = _hand_batch()
    out = clipped_surrogate_eager(logprobs, old, old, ADV, MASK)
    # row 0: min(1, 1)=1 ; min(1.5, 1.28)=1.28 (clip high) ; min(0.5, 0.8)=0.5
    # row 1: min(-2.2, -2.2)=-2.2 ; min(-1.4, 0.8*-2=-1.6)=-1.6 (clip low) ; padding 0
    torch.testing.assert_close(out.surrogate, torch.tensor([[1.0, 1.28, 0.5], [-2.2, -1.6, 0.0]]))
    m = {k: v.item() for k, v in out.metrics.items()}
    assert m["clipfrac_high"] == pytest.approx(1 / 5) and m["clipfrac_low"] == pytest.approx(1 / 5)
    assert m["clipfrac_dual"] == 0.0
    assert m["ratio_mean"] == pytest.approx(4.8 / 5)  # (1 + 1.5 + 0.5 + 1.1 + 0.7) / 5
    assert m["ratio_max"] == pytest.approx(1.5)
    # approx_kl = mean(r - 1 - ln r): 0 + 0.094535 + 0.193147 + 0.004690 + 0.056675 = 0.349047, / 5
    assert m["approx_kl"] == pytest.approx(0.0698093, rel=1e-4)
    # d surrogate / d logprobs = A * r where unclipped, 0 where the clip wins
    out.surrogate.sum().backward()
    torch.testing.assert_close(logprobs.grad, torch.tensor([[1.0, 0.0, 0.5], [-2.2, 0.0, 0.0]]))
    assert all(v.dim() == 0 and not v.requires_grad for v in out.metrics.values())


def test_dual_clip_hand_computed():
    # A = -1, ratio 4 > dual_clip 3: surrogate = max(min(-4, -1.28), -3) = -3, constant -> zero gradient.
    logprobs = torch.zeros(1, 2, requires_grad=True)
    old = torch.tensor([[-math.log(4.0), 0.0]])
    out = clipped_surrogate_eager(logprobs, old, old, torch.tensor([-1.0]), torch.ones(1, 2), dual_clip=3.0)
    torch.testing.assert_close(out.surrogate, torch.tensor([[-3.0, -1.0]]))
    assert out.metrics["clipfrac_dual"].item() == pytest.approx(0.5)
    out.surrogate.sum().backward()
    torch.testing.assert_close(logprobs.grad, torch.tensor([[0.0, -1.0]]))


def test_garbage_at_padding_never_leaks():
    logprobs, old = _hand_batch()
    old = old.clone()
    old[1, 2] = float("nan")
    with torch.no_grad():
        logprobs[1, 2] = float("-inf")
    out = clipped_surrogate_eager(logprobs, old, old, ADV, MASK)
    out.surrogate.sum().backward()
    assert torch.isfinite(out.surrogate).all() and torch.isfinite(logprobs.grad).all()
    assert all(torch.isfinite(v) for v in out.metrics.values())


def _kernel_inputs(batch, anchor_from_teacher: bool):
    anchor = batch.teacher_logprobs if anchor_from_teacher else batch.old_logprobs
    return batch.old_logprobs, anchor, batch.advantages, batch.response_mask


def _run(batch, compile: bool, anchor_from_teacher: bool = False, **kw):
    logprobs = batch.logprobs.detach().clone().requires_grad_()
    old, anchor, adv, mask = _kernel_inputs(batch, anchor_from_teacher)
    out = clipped_surrogate(logprobs, old, anchor, adv, mask, compile=compile, **kw)
    # A weighted sum so every token's gradient is distinct
    weights = torch.linspace(0.5, 1.5, out.surrogate.numel()).reshape(out.surrogate.shape)
    (out.surrogate * weights).sum().backward()
    return out, logprobs.grad


@pytest.mark.parametrize(("dtype", "tol"), [
    (torch.float32, {"rtol": 1e-5, "atol": 1e-6}),
    (torch.bfloat16, {"rtol": 2e-2, "atol": 2e-2}),
])
def test_compiled_equals_eager(dtype, tol):
    # Batch with a fully masked row (row 0) and a length-1 row (row 1), plus a length-1 batch (T = 1).
    for batch in (random_batch(8, 9, dtype=dtype, spread=0.4), random_batch(5, 1, seed=3, dtype=dtype)):
        compiled, grad_c = _run(batch, compile=True, dual_clip=2.0)
        eager, grad_e = _run(batch, compile=False, dual_clip=2.0)
        assert not ratio_module._Fallback.failed
        torch.testing.assert_close(compiled.surrogate, eager.surrogate, **tol)
        torch.testing.assert_close(grad_c, grad_e, **tol)
        assert grad_c[0].abs().sum() == 0  # the fully masked row gets no gradient
        for name in METRIC_NAMES:
            torch.testing.assert_close(compiled.metrics[name], eager.metrics[name], **tol)


def test_compiled_equals_eager_with_per_token_advantages():
    batch = random_batch(4, 6, per_token_adv=True)
    (compiled, grad_c), (eager, grad_e) = _run(batch, True, dual_clip=2.0), _run(batch, False, dual_clip=2.0)
    torch.testing.assert_close(compiled.surrogate, eager.surrogate)
    torch.testing.assert_close(grad_c, grad_e)


def test_varying_lengths_do_not_recompile():
    """After one warm-up call, new (N, T) shapes, N == T, T = 1, N = 1, float masks and views reuse the graph."""
    _run(random_batch(8, 16), compile=True, dual_clip=2.0)  # warm-up (compiles if this process has not yet)
    graphs = counters["stats"]["unique_graphs"]
    for n, t in [(8, 17), (16, 16), (3, 1), (1, 40), (64, 200), (7, 7), (2, 3000), (1, 1)]:
        _run(random_batch(n, t, seed=n + t, empty_row=n > 2, short_row=n > 2), compile=True, dual_clip=2.0)
    batch = random_batch(6, 12)
    wide = torch.cat([batch.logprobs.detach(), torch.zeros(6, 3)], dim=1)
    view = wide[:, :12].requires_grad_()  # a non-contiguous view as the student log-probs
    out = clipped_surrogate(view, batch.old_logprobs, batch.old_logprobs, batch.advantages,
                            batch.response_mask.float(), compile=True, dual_clip=3.0)
    out.surrogate.sum().backward()
    assert counters["stats"]["unique_graphs"] == graphs
    assert not ratio_module._Fallback.failed


def test_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch, caplog):
    def broken():
        def fail(*args, **kwargs):
            raise RuntimeError("no C++ compiler")
        return fail

    monkeypatch.setattr(ratio_module, "compiled_kernel", broken)
    monkeypatch.setattr(ratio_module._Fallback, "failed", False)
    batch = random_batch()
    with caplog.at_level(logging.WARNING, logger=ratio_module.__name__):
        first, grad_1 = _run(batch, compile=True)
        _run(batch, compile=True)
    warnings = [r for r in caplog.records if "falling back" in r.getMessage() or "eager kernel" in r.getMessage()]
    assert len(warnings) == 1 and "no C++ compiler" in warnings[0].getMessage()
    eager, grad_e = _run(batch, compile=False)
    torch.testing.assert_close(first.surrogate, eager.surrogate)
    torch.testing.assert_close(grad_1, grad_e)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"eps_low": -0.1}, "eps_low=-0.1"),
    ({"eps_low": 1.0}, "eps_low=1.0"),
    ({"eps_high": -1.0}, "eps_high=-1.0"),
    ({"dual_clip": 1.0}, "dual_clip=1.0"),
])
def test_invalid_clip_settings(kwargs, match):
    logprobs, old = _hand_batch()
    with pytest.raises(ValueError, match=match):
        clipped_surrogate(logprobs, old, old, ADV, MASK, compile=False, **kwargs)


def test_shape_mismatch():
    logprobs, old = _hand_batch()
    with pytest.raises(ValueError, match=r"anchor_logprobs has shape \(2, 2\)"):
        clipped_surrogate(logprobs, old, old[:, :2], ADV, MASK, compile=False)
    with pytest.raises(ValueError, match="advantages has shape"):
        clipped_surrogate(logprobs, old, old, ADV[:1], MASK, compile=False)


def test_compiled_finite_for_extreme_logprobs():
    # log-ratios of +-1e4 are clamped to +-20 before exp: finite values and gradients, compiled or not.
    logprobs = torch.tensor([[0.0, -1e4, -5.0], [-1e4, 0.0, -1e-6]], requires_grad=True)
    old = torch.tensor([[-1e4, 0.0, -5.0], [0.0, -1e4, -1e-6]])
    adv = torch.tensor([[1e3, -1e3, 1.0], [-1e3, -1e3, 1e3]])
    for compile in (True, False):
        logprobs.grad = None
        out = clipped_surrogate(logprobs, old, old, adv, torch.ones(2, 3), compile=compile, dual_clip=2.0)
        out.surrogate.sum().backward()
        assert torch.isfinite(out.surrogate).all() and torch.isfinite(logprobs.grad).all()
        assert all(torch.isfinite(v) for v in out.metrics.values())
