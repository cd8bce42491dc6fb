"""A checkpoint is a good state: never written from NaN/inf, never resumed from when poisoned, no pickle that runs
code on resume, and the stop message names the real last good checkpoint (or says there is none)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from rl_distill.engine.checkpointing import CheckpointLoadError
from rl_distill.engine.trainer import NonFiniteTrainingError, train
from rl_distill.models.checkpoint import CheckpointWarning, list_checkpoints, write_manifest
from rl_distill.models.factory import build_model
from rl_distill.models.finite import first_nonfinite, nonfinite_training_state

from .conftest import STUDENT, make_config


def _train(out, tokenizer, task, examples, config, model=None, reward_fn=None):
    model = model or build_model(STUDENT, tokenizer)
    result = train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples[0],
                   val_examples=examples[1], config=config, output_dir=out, progress=False, reward_fn=reward_fn)
    return model, result


def _alternating_reward(completions, rows):
    """Rewards 0, 1, 0, 1, ...: every group has a non-zero advantage, so every step moves the weights."""
    return torch.tensor([float(i % 2) for i in range(len(completions))]), {}


def _poison(directory: Path, rel: str) -> None:
    """NaN into the first tensor of ``rel`` and a manifest rewritten to match: only the content check can tell."""
    path = directory / rel
    tensors = load_file(str(path))
    first = sorted(tensors)[0]
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, str(path), metadata={"format": "pt"})
    (directory / "COMPLETE").unlink()
    write_manifest(directory, {"step": int(directory.name.split("_")[1])})


def test_first_nonfinite_names_the_tensor() -> None:
    ok = torch.ones(3)
    assert first_nonfinite([("a", ok), ("ids", torch.tensor([1, 2]))]) is None  # integer tensors are not checked
    assert first_nonfinite([("a", ok), ("b", torch.tensor([1.0, float("inf")])), ("c", torch.tensor([float("nan")]))]
                           ) == "b"
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    assert nonfinite_training_state(model, opt) is None
    opt.state[model.bias]["exp_avg_sq"].fill_(float("nan"))
    assert nonfinite_training_state(model, opt) == "optimizer state 'exp_avg_sq' of parameter 1 [1]"
    with torch.no_grad():
        model.weight[0, 1] = float("-inf")
    assert nonfinite_training_state(model, opt) == "weight 'weight'"


def test_a_checkpoint_holds_no_pickle_but_optimizer_bin(tmp_path, tokenizer, task, examples) -> None:
    _train(tmp_path, tokenizer, task, examples, make_config())
    state = tmp_path / "checkpoints" / "step_000004" / "state"
    assert sorted(p.name for p in state.iterdir()) == [
        "model.safetensors", "optimizer.bin", "rng_state_0.json", "rng_state_0.safetensors"]


@pytest.mark.parametrize("rel", ["model/model.safetensors", "state/model.safetensors"])
def test_checkpoint_with_nan_weights_is_skipped_on_resume(tmp_path, tokenizer, task, examples, rel) -> None:
    whole, _ = _train(tmp_path / "a", tokenizer, task, examples, make_config())
    _train(tmp_path / "b", tokenizer, task, examples, make_config())
    _poison(tmp_path / "b" / "checkpoints" / "step_000004", rel)
    with pytest.warns(CheckpointWarning, match=rf"step_000004: non-finite weights in {rel} \(tensor '.*' holds NaN"):
        resumed, result = _train(tmp_path / "b", tokenizer, task, examples, make_config())
    assert result.resumed_from == 2 and result.final_step == 4  # from the good step-2 checkpoint, then on to 4
    for (name, p), q in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name


def _poison_after(step_no, poison):
    """``rl_step`` that applies ``poison(model)`` to the weights right after the update of step ``step_no``."""
    import rl_distill.engine.trainer as trainer

    real = trainer.rl_step

    def step(learner, parts, settings, examples_, epochs, frac, metrics, stall, at):
        out = real(learner, parts, settings, examples_, epochs, frac, metrics, stall, at)
        if at == step_no:
            with torch.no_grad():
                poison(learner.model)
        return out

    return step


def _overflow(model):
    model.model.norm.weight.fill_(3e38)  # finite (fp32 max 3.4e38); the logits, sums of 32 +-3e38 terms, are not


def _nan(model):
    next(model.parameters()).view(-1)[0] = float("nan")


def test_overflowing_weights_stop_at_sampling_naming_the_last_checkpoint(tmp_path, tokenizer, task, examples,
                                                                         monkeypatch) -> None:
    import rl_distill.engine.trainer as trainer

    monkeypatch.setattr(trainer, "rl_step", _poison_after(2, _overflow))
    with pytest.raises(NonFiniteTrainingError) as info:  # not torch.multinomial's RuntimeError
        _train(tmp_path, tokenizer, task, examples, make_config(checkpoint={"every": 1}),
               reward_fn=_alternating_reward)
    message = str(info.value)
    assert message.startswith("step 3: sampling: the policy's next-token probabilities hold NaN or inf")
    assert "the largest |weight| is " in message and "optimizer.lr=0.01" in message
    # Step 2's weights are finite, so they were checkpointed (finite weights whose logits overflow show only when
    # sampled; a resume from step 2 stops the same way, with this message).
    assert f"the last good state is {tmp_path / 'checkpoints' / 'step_000002'}, which a rerun resumes" in message
    assert [s for s, _ in list_checkpoints(tmp_path / "checkpoints")] == [1, 2]


def test_poisoning_after_a_checkpoint_names_that_checkpoint(tmp_path, tokenizer, task, examples, monkeypatch) -> None:
    import rl_distill.engine.trainer as trainer

    monkeypatch.setattr(trainer, "rl_step", _poison_after(3, _nan))
    with pytest.raises(NonFiniteTrainingError, match=r"after the update of step 3: weight '.*' holds NaN or inf.*"
                                                     r"the last good state is .*step_000002, which a rerun resumes"):
        _train(tmp_path, tokenizer, task, examples, make_config(), reward_fn=_alternating_reward)
    assert [s for s, _ in list_checkpoints(tmp_path / "checkpoints")] == [2]


def test_poisoned_first_step_says_no_checkpoint_exists(tmp_path, tokenizer, task, examples, monkeypatch) -> None:
    import rl_distill.engine.trainer as trainer

    monkeypatch.setattr(trainer, "rl_step", _poison_after(1, _nan))
    with pytest.raises(NonFiniteTrainingError) as info:
        _train(tmp_path, tokenizer, task, examples, make_config(checkpoint={"every": 1}))
    assert f"no checkpoint was written yet (none under {tmp_path / 'checkpoints'})" in str(info.value)
    assert list_checkpoints(tmp_path / "checkpoints") == []


def test_nonfinite_initial_model_is_refused(tmp_path, tokenizer, task, examples) -> None:
    model = build_model(STUDENT, tokenizer)
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")
    # lm_head is tied to the embeddings, which named_parameters() lists first
    with pytest.raises(NonFiniteTrainingError, match="starting weights: weight 'model.embed_tokens.weight' holds NaN"):
        _train(tmp_path, tokenizer, task, examples, make_config(), model=model)


class _RunsCode:
    """Unpickling this would create ``marker``: the classic pickle payload (``__reduce__`` -> a callable)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_tampered_optimizer_state_cannot_run_code(tmp_path, tokenizer, task, examples) -> None:
    _train(tmp_path, tokenizer, task, examples, make_config())
    ckpt = tmp_path / "checkpoints" / "step_000004"
    marker = tmp_path / "pwned"
    torch.save({"state": {}, "param_groups": _RunsCode(marker)}, ckpt / "state" / "optimizer.bin",
               pickle_protocol=pickle.HIGHEST_PROTOCOL)
    (ckpt / "COMPLETE").unlink()
    write_manifest(ckpt, {"step": 4})  # the attacker rewrites the manifest too: the checksums cannot help
    with pytest.raises(CheckpointLoadError, match=r"step_000004 passed its checksums but cannot be loaded "
                                                  r"\(UnpicklingError: Weights only load failed"):
        _train(tmp_path, tokenizer, task, examples, make_config())
    assert not marker.exists()
