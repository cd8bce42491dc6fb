"""LoRA through peft: only adapters train, the reference is the base with adapters off, the final directory is merged,
checkpoints hold the adapter, a resume is bit-identical, and a bad target fails before training."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from rl_distill.engine.config import TrainConfig
from rl_distill.engine.lora import AdapterDisabled, LoraSettings, linear_module_names, wrap_lora
from rl_distill.engine.trainer import train
from rl_distill.models.checkpoint import list_checkpoints
from rl_distill.models.factory import build_model
from rl_distill.typed_config import ConfigError, from_dict

from .conftest import STUDENT, make_config

# B-matrices start at zero: a large learning rate makes 4 steps move the adapters visibly. SFT, so every step has a
# gradient (the untrained tiny policy's GRPO groups all score alike: zero advantage).
LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}
SFT = {"loss": {"name": "sft"}, "sft": {"batch_size": 4}}


class Interrupt(Exception):
    pass


def _train(out, tokenizer, task, examples, config, log_fn=None):
    model = build_model(STUDENT, tokenizer)
    result = train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples[0],
                   val_examples=examples[1], config=config, output_dir=out, progress=False, log_fn=log_fn)
    return model, result


def test_only_adapters_train_and_the_final_directory_is_merged(tmp_path, tokenizer, task, examples):
    config = make_config(lora=LORA, **SFT, optimizer={"lr": 5e-2})
    initial = build_model(STUDENT, tokenizer)
    _, result = _train(tmp_path, tokenizer, task, examples, config)
    final_dir = result.final_model_dir
    assert not (final_dir / "adapter_config.json").exists()  # merged: a plain HF model directory
    merged = AutoModelForCausalLM.from_pretrained(final_dir)
    before, after = initial.state_dict(), merged.state_dict()
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # Only the adapted projections differ (W0 + scale * B A); embeddings, MLPs, norms are the base's exactly.
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed)
    # A checkpoint's model/ directory is the adapter alone.
    (_, ckpt), *_ = reversed(list_checkpoints(tmp_path / "checkpoints"))
    adapter = json.loads((ckpt / "model" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]
    assert (ckpt / "model" / "adapter_model.safetensors").exists()
    assert not (ckpt / "model" / "model.safetensors").exists()


def test_the_reference_is_the_base_with_adapters_off(tokenizer):
    base = build_model(STUDENT, tokenizer)
    snapshot = build_model(STUDENT, tokenizer)  # same seed: the same starting weights
    policy = wrap_lora(base, LoraSettings(r=2, alpha=4, target_modules=("q_proj",)))
    for name, param in policy.named_parameters():
        assert param.requires_grad == ("lora_" in name), name
        if "lora_B" in name:
            with torch.no_grad():
                param.add_(0.5)  # a trained adapter: the policy now differs from its base
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    reference = AdapterDisabled(policy)
    policy.train()
    with torch.no_grad():
        ref_logits = reference(input_ids=ids).logits
        assert policy.training  # the view restores the policy's mode
        policy.eval()
        policy_logits = policy(input_ids=ids).logits
        expected = snapshot(input_ids=ids).logits
    torch.testing.assert_close(ref_logits, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(policy_logits, expected, atol=1e-3)
    assert list(reference.parameters())  # the scoring code probes device/dtype through it
    reference.requires_grad_(False)  # freezing the view must not freeze the adapters
    assert any(p.requires_grad for p in policy.parameters())


def test_interrupted_and_resumed_lora_run_equals_uninterrupted(tmp_path, tokenizer, task, examples):
    config = make_config(total_steps=4, lora=LORA, **SFT, optimizer={"lr": 5e-2})
    whole, whole_result = _train(tmp_path / "a", tokenizer, task, examples, config)

    def die_at_3(metrics, step):
        if step == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        _train(tmp_path / "b", tokenizer, task, examples, config, log_fn=die_at_3)
    resumed, result = _train(tmp_path / "b", tokenizer, task, examples, config)
    assert result.resumed_from == 2 and result.final_step == 4
    assert result.history["train/loss"] == whole_result.history["train/loss"]
    a = AutoModelForCausalLM.from_pretrained(whole_result.final_model_dir).state_dict()
    b = AutoModelForCausalLM.from_pretrained(result.final_model_dir).state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_target_that_matches_no_module_fails_naming_the_linear_layers(tokenizer, task, examples, tmp_path):
    model = build_model(STUDENT, tokenizer)
    assert linear_module_names(model) == ["down_proj", "gate_proj", "k_proj", "lm_head", "o_proj", "q_proj",
                                          "up_proj", "v_proj"]
    config = make_config(lora={"target_modules": ["q_proj", "query_key_value"]})
    with pytest.raises(ConfigError, match=r"\['query_key_value'\] match no module.*'q_proj'"):
        train(policy=model, tokenizer=tokenizer, task=task, train_examples=examples[0], val_examples=examples[1],
              config=config, output_dir=tmp_path, progress=False)
    assert not (tmp_path / "checkpoints").exists()  # nothing ran


@pytest.mark.parametrize("bad, message", [
    ({"r": 0}, "lora.r"),
    ({"dropout": 1.5}, "lora.dropout"),
    ({"target_modules": []}, "target_modules is empty"),
    ({"rank": 8}, "unknown key 'rank'"),
])
def test_bad_lora_settings_fail_at_load(bad, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(TrainConfig, {"lora": bad}, where="test")


def test_lora_refuses_the_vllm_engine():
    with pytest.raises(ConfigError, match="only the hf engine"):
        from_dict(TrainConfig, {"lora": {}, "rollout": {"engine": "vllm"}}, where="test")


def test_a_kl_to_the_reference_starts_at_zero_because_the_reference_is_the_start(tmp_path, tokenizer, task,
                                                                                 examples):
    # LoRA's B starts at zero, so at step 1 the policy equals its base exactly: KL(pi || pi_ref) must be 0 there
    # (a reference that were anything but the adapters-off base would give a positive value).
    config = make_config(total_steps=2, lora=LORA, mu=1, log_every=1,
                         loss={"name": "grpo", "config": {"compile": False, "beta": 0.5}}, concurrent_scoring="on")
    _, result = _train(tmp_path, tokenizer, task, examples, config)
    kl = dict(result.history["train/kl_ref"])
    assert kl[1] == pytest.approx(0.0, abs=1e-7)
