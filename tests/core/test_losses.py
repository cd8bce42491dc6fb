"""Policy losses by name: hand-computed values, GRPO <-> RLAD identities, the four clip regimes, KL-KD, SFT."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from rl_distill.core.losses import POLICY_LOSSES, RLADConfig, build_policy_loss
from rl_distill.core.types import BatchError, PolicyBatch
from rl_distill.registry import UnknownNameError
from rl_distill.typed_config import ConfigError

from .batches import random_batch, with_logprobs

EAGER = {"compile": False}

# torch's own compile machinery emits this deprecation on first use; it is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def _loss_and_grad(name: str, config: dict, batch: PolicyBatch):
    batch = with_logprobs(batch, batch.logprobs)
    out = build_policy_loss(name, {**EAGER, **config})(batch)
    out.loss.backward()
    return out, batch.logprobs.grad


def test_registry_and_flags():
    assert POLICY_LOSSES.names() == ["grpo", "kl_kd", "opd", "rlad", "sft"]
    assert not build_policy_loss("grpo").needs_teacher and not build_policy_loss("grpo").needs_ref
    assert build_policy_loss("grpo", {"beta": 0.01}).needs_ref
    assert build_policy_loss("rlad").needs_teacher and build_policy_loss("kl_kd").needs_teacher
    assert not build_policy_loss("kl_kd").needs_logits and build_policy_loss("kl_kd", {"full_vocab": True}).needs_logits
    assert isinstance(build_policy_loss("rlad", RLADConfig(alpha=0.3)).config, RLADConfig)


def test_grpo_hand_computed():
    # ratios row 0 (A=+1): 1, 1.5, 0.5 -> surrogates 1, 1.28 (clip), 0.5 ; row 1 (A=-2): 1.1, 0.7 -> -2.2, -1.6 (clip)
    logprobs = torch.full((2, 3), -1.0)
    old = logprobs - torch.tensor([[1.0, 1.5, 0.5], [1.1, 0.7, 1.0]]).log()
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    batch = PolicyBatch(logprobs=logprobs, old_logprobs=old, advantages=torch.tensor([1.0, -2.0]), response_mask=mask)
    # seq-mean-token-mean: row means 2.78/3 = 0.926667 and -3.8/2 = -1.9 -> mean -0.486667 -> loss 0.486667
    out, grad = _loss_and_grad("grpo", {}, batch)
    assert out.loss.item() == pytest.approx(0.4866667, rel=1e-5)
    # d loss / d logprobs = -(1/N)(1/|o_i|) A r where unclipped: row 0: -1/6, 0, -0.5/6 ; row 1: 2.2/4, 0, 0
    torch.testing.assert_close(grad, torch.tensor([[-1 / 6, 0.0, -0.5 / 6], [0.55, 0.0, 0.0]]))
    assert out.metrics["pg_loss"].item() == pytest.approx(0.4866667, rel=1e-5)
    # token-mean: -(2.78 - 3.8) / 5 = 0.204 ; Dr.GRPO: 1.02 / (2 * 3) = 0.17
    assert _loss_and_grad("grpo", {"agg": "token-mean"}, batch)[0].loss.item() == pytest.approx(0.204, rel=1e-5)
    sum_norm = _loss_and_grad("grpo", {"agg": "seq-mean-token-sum-norm"}, batch)[0]
    assert sum_norm.loss.item() == pytest.approx(0.17, rel=1e-5)


def test_grpo_reference_kl_term():
    # One token, ratio 1 (surrogate = A = 1), d = log pi_S - log pi_ref = 0.5: k3 = exp(-0.5) + 0.5 - 1 = 0.106531
    batch = PolicyBatch(logprobs=torch.tensor([[-1.0]]), old_logprobs=torch.tensor([[-1.0]]),
                        advantages=torch.tensor([1.0]), response_mask=torch.ones(1, 1),
                        ref_logprobs=torch.tensor([[-1.5]]))
    out, grad = _loss_and_grad("grpo", {"beta": 0.1}, batch)
    assert out.loss.item() == pytest.approx(-1.0 + 0.1 * 0.1065307, rel=1e-5)
    assert out.metrics["kl_ref"].item() == pytest.approx(0.1065307, rel=1e-5)
    # d/dS: -1 (surrogate) + 0.1 * (1 - exp(-0.5)) = -1 + 0.1 * 0.393469
    assert grad.item() == pytest.approx(-1.0 + 0.0393469, rel=1e-5)
    with pytest.raises(BatchError, match="ref_logprobs is None"):
        build_policy_loss("grpo", {"beta": 0.1, **EAGER})(PolicyBatch(
            batch.logprobs, batch.old_logprobs, batch.advantages, batch.response_mask))


@pytest.mark.parametrize("anchor", ["geometric", "arithmetic"])
@pytest.mark.parametrize("clamp", ["hard", "straight_through", "none"])
def test_rlad_alpha_one_is_grpo_exactly(anchor, clamp):
    batch = random_batch(6, 7, spread=0.4)
    grpo, grpo_grad = _loss_and_grad("grpo", {"beta": 0.05}, batch)
    rlad, rlad_grad = _loss_and_grad("rlad", {"beta": 0.05, "alpha": 1.0, "anchor": anchor, "teacher_clamp": clamp},
                                     batch)
    assert torch.equal(rlad.loss, grpo.loss) and torch.equal(rlad_grad, grpo_grad)
    for name, value in grpo.metrics.items():
        assert torch.equal(rlad.metrics[name], value), name


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("clamp", ["hard", "none"])
def test_rlad_with_teacher_equal_old_is_grpo(alpha, clamp):
    # |log pi_S - log pi_old| < 1 (spread 0.2), so the hard clamp is inactive: the anchor is the old policy exactly.
    batch = random_batch(6, 7, spread=0.2)
    batch = PolicyBatch(**{**{k: getattr(batch, k) for k in batch.__dataclass_fields__},
                           "teacher_logprobs": batch.old_logprobs.clone()})
    assert (batch.logprobs - batch.old_logprobs).abs().max() < 1
    grpo, grpo_grad = _loss_and_grad("grpo", {}, batch)
    rlad, rlad_grad = _loss_and_grad("rlad", {"alpha": alpha, "teacher_clamp": clamp}, batch)
    assert torch.equal(rlad.loss, grpo.loss) and torch.equal(rlad_grad, grpo_grad)


def test_rlad_four_clip_regimes():
    """method.md section 3 at theta = theta_old, alpha = 0.5, eps = (0.2, 0.28), one token per response.

    log_ratio = 0.5 * (S - old) + 0.5 * (S - T) = 0.5 * (S - T) with S = old:
      teacher likes the token    (T = old + 0.8): log_ratio = -0.4, ratio = exp(-0.4) = 0.670320 < 0.8
      teacher dislikes the token (T = old - 0.8): log_ratio = +0.4, ratio = exp(+0.4) = 1.491825 > 1.28
    """
    old = torch.full((4, 1), math.log(0.5))
    teacher = old + torch.tensor([[0.8], [-0.8], [0.8], [-0.8]])
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    batch = PolicyBatch(logprobs=old.clone(), old_logprobs=old, advantages=adv, response_mask=torch.ones(4, 1),
                        teacher_logprobs=teacher)
    out, grad = _loss_and_grad("rlad", {"alpha": 0.5}, batch)
    r_like, r_dislike = math.exp(-0.4), math.exp(0.4)
    expected = torch.tensor([
        [-r_like / 4],  # A > 0, liked: room to rise, gradient -A r / N = -0.670320 / 4
        [0.0],  # A > 0, disliked: ratio above 1.28, clipped, no push up
        [0.0],  # A < 0, liked: ratio below 0.8, clipped, protected from being pushed down
        [r_dislike / 4],  # A < 0, disliked: pushed down, gradient -A r / N = 1.491825 / 4
    ])
    torch.testing.assert_close(grad, expected)
    # loss = -(0.670320 + 1.28 - 0.8 - 1.491825) / 4 = 0.0853763
    assert out.loss.item() == pytest.approx(0.0853763, rel=1e-5)
    assert out.metrics["clipfrac_high"].item() == pytest.approx(0.25)
    assert out.metrics["clipfrac_low"].item() == pytest.approx(0.25)
    assert out.metrics["teacher_log_ratio"].item() == pytest.approx(0.0, abs=1e-6)  # (-0.8 + 0.8 - 0.8 + 0.8) / 4
    # GRPO on the same batch: every ratio is 1, nothing clips, every token moves by -A / N = -+0.25.
    _, grpo_grad = _loss_and_grad("grpo", {}, batch)
    torch.testing.assert_close(grpo_grad, -adv.unsqueeze(1) / 4)


@pytest.mark.parametrize(("clamp", "ratio", "grad_factor", "clamp_frac"), [
    # S = old, S - T = 2 > c = 1. hard: log_ratio = 0.5*0 + 0.5*1 = 0.5, gradient scaled by alpha = 0.5
    ("hard", math.exp(0.5), 0.5, 1.0),
    ("straight_through", math.exp(0.5), 1.0, 1.0),  # same value, full gradient
    ("none", math.exp(1.0), 1.0, 0.0),  # log_ratio = 0.5 * 2 = 1
])
def test_rlad_teacher_clamp_modes(clamp, ratio, grad_factor, clamp_frac):
    batch = PolicyBatch(logprobs=torch.tensor([[-1.0]]), old_logprobs=torch.tensor([[-1.0]]),
                        advantages=torch.tensor([-1.0]), response_mask=torch.ones(1, 1),
                        teacher_logprobs=torch.tensor([[-3.0]]))
    out, grad = _loss_and_grad("rlad", {"alpha": 0.5, "teacher_clamp": clamp}, batch)
    # A = -1 and ratio > 1: unclipped, loss = -A * ratio = ratio, d loss / d S = ratio * d log_ratio / d S
    assert out.loss.item() == pytest.approx(ratio, rel=1e-5)
    assert grad.item() == pytest.approx(ratio * grad_factor, rel=1e-5)
    assert out.metrics["teacher_clamp_frac"].item() == clamp_frac
    assert out.metrics["teacher_log_ratio"].item() == pytest.approx(2.0)


def test_rlad_arithmetic_anchor_hand_computed():
    # pi_old = 0.2, pi_T = 0.6, alpha = 0.5, S = old, A = +1 (no clip for ratio < 1 when A > 0):
    # arithmetic anchor 0.5*0.2 + 0.5*0.6 = 0.4 -> ratio 0.5 ; geometric sqrt(0.2*0.6) = 0.346410 -> ratio 0.577350
    batch = PolicyBatch(logprobs=torch.tensor([[math.log(0.2)]]), old_logprobs=torch.tensor([[math.log(0.2)]]),
                        advantages=torch.tensor([1.0]), response_mask=torch.ones(1, 1),
                        teacher_logprobs=torch.tensor([[math.log(0.6)]]))
    arith, _ = _loss_and_grad("rlad", {"anchor": "arithmetic", "teacher_clamp": "none"}, batch)
    geom, _ = _loss_and_grad("rlad", {"anchor": "geometric", "teacher_clamp": "none"}, batch)
    assert arith.loss.item() == pytest.approx(-0.5, rel=1e-5)
    assert geom.loss.item() == pytest.approx(-0.5773503, rel=1e-5)


@pytest.mark.parametrize(("estimator", "kd_mean"), [
    ("k2", 0.3125),  # d = (0.5, -1): (0.125 + 0.5) / 2
    ("k1", -0.25),  # (0.5 - 1) / 2
    ("k3", 0.4124064),  # (0.106531 + 0.718282) / 2
])
def test_kl_kd_hand_computed(estimator, kd_mean):
    s = torch.tensor([[-1.0, -2.0]])
    batch = PolicyBatch(logprobs=s, old_logprobs=s.clone(), advantages=torch.tensor([1.0]),
                        response_mask=torch.ones(1, 2), teacher_logprobs=s - torch.tensor([[0.5, -1.0]]),
                        progress=0.5)
    out, grad = _loss_and_grad("kl_kd", {"kd_estimator": estimator}, batch)
    beta = 5e-3 + (1e-3 - 5e-3) * 0.5  # linear schedule at progress 0.5 = 3e-3
    assert out.metrics["beta_kd"].item() == pytest.approx(beta)
    assert out.metrics["kd_loss"].item() == pytest.approx(kd_mean, rel=1e-5)
    assert out.loss.item() == pytest.approx(-1.0 + beta * kd_mean, rel=1e-6)  # GRPO part: ratio 1, A = 1
    if estimator == "k2":  # d/dS = -1/2 (GRPO) + beta * d / 2 = [-0.5 + 0.00075, -0.5 - 0.0015]
        torch.testing.assert_close(grad, torch.tensor([[-0.49925, -0.5015]]))


def test_kl_kd_beta_schedules():
    loss = build_policy_loss("kl_kd", EAGER)
    assert loss.beta_kd(0.0) == pytest.approx(5e-3) and loss.beta_kd(1.0) == pytest.approx(1e-3)
    const = build_policy_loss("kl_kd", {"beta_schedule": "constant", "beta_kd_start": 0.01})
    assert const.beta_kd(0.0) == const.beta_kd(0.7) == 0.01
    with pytest.raises(BatchError, match=r"progress=1.5 is out of range; valid range is \[0, 1\]"):
        loss.beta_kd(1.5)


def _with_random_logits(seed: int, vocab: int = 9) -> tuple[PolicyBatch, PolicyBatch, Tensor, Tensor]:
    """A 3 x 4 random batch, and the same batch carrying random student (leaf) and teacher logits."""
    gen = torch.Generator().manual_seed(seed)
    batch = random_batch(3, 4)
    student_logits = torch.randn(3, 4, vocab, generator=gen, requires_grad=True)
    teacher_logits = torch.randn(3, 4, vocab, generator=gen)
    fields = {k: getattr(batch, k) for k in batch.__dataclass_fields__}
    full = PolicyBatch(**{**fields, "student_logits": student_logits, "teacher_logits": teacher_logits})
    return batch, full, student_logits, teacher_logits


def test_kl_kd_full_vocab_matches_naive():
    batch, full, student_logits, teacher_logits = _with_random_logits(0)
    out = build_policy_loss("kl_kd", {"full_vocab": True, "vocab_chunk_size": 5, **EAGER})(full)
    logp, logq = torch.log_softmax(student_logits, -1), torch.log_softmax(teacher_logits, -1)
    per_token = (logp.exp() * (logp - logq)).sum(-1)
    mask = batch.response_mask
    naive = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1))[mask.any(-1)].mean()  # seq-mean-token-mean
    torch.testing.assert_close(out.metrics["kd_loss"], naive.detach())
    out.loss.backward()
    assert student_logits.grad is not None and torch.isfinite(student_logits.grad).all()
    with pytest.raises(BatchError, match="student_logits is None"):
        build_policy_loss("kl_kd", {"full_vocab": True, **EAGER})(batch)


def test_kl_kd_forward_direction_is_gkd_forward_kl():
    """direction: forward = KL(teacher || student) per position; its gradient on the student's logits is p_S - p_T."""
    batch, full, student_logits, teacher_logits = _with_random_logits(1)
    config = {"full_vocab": True, "direction": "forward", "vocab_chunk_size": 5, "beta_schedule": "constant",
              "beta_kd_start": 0.5, **EAGER}
    out = build_policy_loss("kl_kd", config)(full)
    logp, logq = torch.log_softmax(student_logits, -1), torch.log_softmax(teacher_logits, -1)
    per_token = (logq.exp() * (logq - logp)).sum(-1)  # KL(teacher || student)
    mask = batch.response_mask
    rows = mask.any(-1)
    naive = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1))[rows].mean()  # seq-mean-token-mean
    torch.testing.assert_close(out.metrics["kd_loss"], naive.detach())
    # Only the KD term reaches the logits: d(0.5 * kd)/d logits = 0.5 * w_t * (p_S - p_T), with w_t the position's
    # weight under seq-mean-token-mean (1 / (rows * |o_i|)), 0 on padding.
    weight = mask / mask.sum(-1, keepdim=True).clamp(min=1) / rows.sum()
    expected = 0.5 * weight.unsqueeze(-1) * (logp.exp() - logq.exp())
    out.loss.backward()
    torch.testing.assert_close(student_logits.grad, expected.detach())
    # A tiny example by hand: V = 2, student (0.5, 0.5), teacher (0.8, 0.2): KL(T || S) = 0.8 ln 1.6 + 0.2 ln 0.4.
    one = PolicyBatch(logprobs=torch.tensor([[-0.7]]), old_logprobs=torch.tensor([[-0.7]]),
                      advantages=torch.tensor([0.0]), response_mask=torch.ones(1, 1), progress=0.0,
                      teacher_logprobs=torch.tensor([[-0.2]]),
                      student_logits=torch.zeros(1, 1, 2), teacher_logits=torch.tensor([[[0.8, 0.2]]]).log())
    kd = build_policy_loss("kl_kd", config)(one).metrics["kd_loss"]
    assert kd.item() == pytest.approx(0.8 * math.log(1.6) + 0.2 * math.log(0.4), rel=1e-5)
    with pytest.raises(ConfigError, match="direction='forward' needs full_vocab=true"):
        build_policy_loss("kl_kd", {"direction": "forward"})
    with pytest.raises(ConfigError, match="direction"):
        build_policy_loss("kl_kd", {"full_vocab": True, "direction": "sideways"})


def test_sft_hand_computed():
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, 7.0, float("nan")]], requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    dummy = torch.zeros(1)
    batch = PolicyBatch(logprobs=logprobs, old_logprobs=dummy, advantages=dummy, response_mask=mask)
    out = build_policy_loss("sft")(batch)
    assert out.loss.item() == pytest.approx(1.625)  # (1 + 2 + 3 + 0.5) / 4 tokens
    assert out.metrics["nll"].item() == pytest.approx(1.625)
    out.loss.backward()
    torch.testing.assert_close(logprobs.grad, torch.tensor([[-0.25, -0.25, -0.25], [-0.25, 0.0, 0.0]]))
    seq = build_policy_loss("sft", {"agg": "seq-mean-token-mean"})(batch)
    assert seq.loss.item() == pytest.approx(1.25)  # (6/3 + 0.5/1) / 2


@pytest.mark.parametrize("name", ["grpo", "kl_kd", "rlad", "sft"])
def test_padding_invariance(name):
    """Extra padded positions (with garbage, even inf/NaN) change no loss, metric or real-token gradient."""
    batch = random_batch(5, 6, spread=0.5)
    config = {} if name == "sft" else {"beta": 0.02, "dual_clip": 3.0, **EAGER}
    if name == "rlad":
        config["alpha"] = 0.3
    pad = 4
    garbage = torch.tensor([float("nan"), float("-inf"), 1e6, -3.0]).expand(5, pad)

    def padded(t):
        return torch.cat([t, garbage.to(t.dtype)], dim=1)

    wide = PolicyBatch(
        logprobs=padded(batch.logprobs.detach()).requires_grad_(), old_logprobs=padded(batch.old_logprobs),
        advantages=batch.advantages, response_mask=torch.cat([batch.response_mask, torch.zeros(5, pad, dtype=bool)], 1),
        ref_logprobs=padded(batch.ref_logprobs), teacher_logprobs=padded(batch.teacher_logprobs),
        progress=batch.progress)
    loss_fn = build_policy_loss(name, config)
    narrow_out, wide_out = loss_fn(batch), loss_fn(wide)
    narrow_out.loss.backward()
    wide_out.loss.backward()
    torch.testing.assert_close(wide_out.loss, narrow_out.loss, rtol=1e-6, atol=1e-7)
    assert wide_out.metrics.keys() == narrow_out.metrics.keys()
    for key, value in narrow_out.metrics.items():
        torch.testing.assert_close(wide_out.metrics[key], value, rtol=1e-6, atol=1e-7, msg=key)
    torch.testing.assert_close(wide.logprobs.grad[:, :6], batch.logprobs.grad, rtol=1e-6, atol=1e-8)
    assert torch.equal(wide.logprobs.grad[:, 6:], torch.zeros(5, pad))


@pytest.mark.parametrize("name", ["grpo", "kl_kd", "rlad"])
def test_metrics_are_detached_scalars(name):
    out = build_policy_loss(name, {"beta": 0.01, **EAGER})(random_batch())
    expected = {"clipfrac_low", "clipfrac_high", "clipfrac_dual", "ratio_mean", "ratio_max", "approx_kl", "pg_loss",
                "kl_ref"}
    if name != "grpo":
        expected.add("teacher_log_ratio")
    assert expected <= out.metrics.keys()
    assert all(v.dim() == 0 and not v.requires_grad for v in out.metrics.values())
    assert out.loss.dim() == 0 and out.loss.requires_grad


@pytest.mark.parametrize("name", ["grpo", "kl_kd", "rlad"])
def test_compiled_loss_equals_eager(name):
    batch = random_batch(6, 5, spread=0.4)
    compiled, grad_c = _loss_and_grad(name, {"compile": True, "dual_clip": 2.0}, batch)
    eager, grad_e = _loss_and_grad(name, {"compile": False, "dual_clip": 2.0}, batch)
    torch.testing.assert_close(compiled.loss, eager.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_c, grad_e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "config", "match"), [
    ("rlad", {"alpha": 1.5}, r"alpha=1.5 is out of range; valid range is \[0.0, 1.0\]"),
    ("rlad", {"alpha": -0.1}, r"alpha=-0.1 is out of range"),
    ("grpo", {"eps_low": -0.2}, r"eps_low=-0.2 is out of range; valid range is \[0.0, 1.0\)"),
    ("grpo", {"eps_high": -0.1}, r"eps_high=-0.1 is out of range"),
    ("grpo", {"dual_clip": 0.5}, r"dual_clip=0.5 is out of range; valid range is \(1.0, inf\)"),
    ("grpo", {"agg": "mean"}, r"agg='mean' is not valid.*seq-mean-token-mean"),
    ("grpo", {"kl_estimator": "k5"}, r"kl_estimator='k5' is not valid.*k1, k2, k3"),
    ("kl_kd", {"kd_estimator": "k4"}, r"kd_estimator='k4' is not valid"),
    ("kl_kd", {"beta_schedule": "cosine"}, r"beta_schedule='cosine' is not valid.*constant, linear"),
    ("rlad", {"teacher_clamp": "soft"}, r"teacher_clamp='soft' is not valid.*hard, none, straight_through"),
    ("rlad", {"anchor": "harmonic"}, r"anchor='harmonic' is not valid.*arithmetic, geometric"),
    ("rlad", {"teacher_clamp_value": 0.0}, r"teacher_clamp_value=0.0 is out of range"),
    ("grpo", {"alpha": 0.5}, r"policy loss 'grpo': unknown key 'alpha'"),
])
def test_invalid_configuration(name, config, match):
    with pytest.raises(ConfigError, match=match):
        build_policy_loss(name, config)


def test_unknown_loss_name():
    with pytest.raises(UnknownNameError, match="grpo, kl_kd, opd, rlad, sft"):
        build_policy_loss("ppo")


@pytest.mark.parametrize("name", ["kl_kd", "rlad"])
def test_teacher_shape_and_dtype_mismatch(name):
    batch = random_batch(3, 4)
    fields = {k: getattr(batch, k) for k in batch.__dataclass_fields__}
    loss_fn = build_policy_loss(name, EAGER)
    with pytest.raises(BatchError, match=r"teacher_logprobs has shape \(3, 3\) but logprobs has shape \(3, 4\)"):
        loss_fn(PolicyBatch(**{**fields, "teacher_logprobs": batch.teacher_logprobs[:, :3]}))
    with pytest.raises(BatchError, match="teacher_logprobs has dtype torch.bfloat16 but logprobs has dtype"):
        loss_fn(PolicyBatch(**{**fields, "teacher_logprobs": batch.teacher_logprobs.bfloat16()}))
    with pytest.raises(BatchError, match="teacher_logprobs is None"):
        loss_fn(PolicyBatch(**{**fields, "teacher_logprobs": None}))
