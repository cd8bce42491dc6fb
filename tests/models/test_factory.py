"""Model factory: tiny models from config, seeded init, config validation, vocabulary checks, HF dir round trip."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from rl_distill.models.checkpoint import save_hf_dir
from rl_distill.models.factory import (
    ModelConfig,
    ModelLoadError,
    build_model,
    check_model_vocab,
    check_shared_vocab,
    count_parameters,
    has_fast_bfloat16,
    load_model_dir,
    resolve_dtype,
)
from rl_distill.models.tokenizer import build_tokenizer
from rl_distill.typed_config import ConfigError, from_dict


def test_tiny_llama_from_config_matches_tokenizer(tokenizer, tiny_cfg):
    model = build_model(tiny_cfg, tokenizer)
    assert model.config.model_type == "llama"
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.num_key_value_heads == 2
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    # Tied embeddings: V*d once + per layer (q,o: d*d; k,v: d*d/2 each; mlp 3*d*ffn; 2 norms) + final norm.
    d, ffn, v = 32, 64, len(tokenizer)
    per_layer = 2 * d * d + 2 * d * (d // 2) + 3 * d * ffn + 2 * d
    assert count_parameters(model) == v * d + 2 * per_layer + d


def test_init_is_seeded_and_leaves_global_rng_alone(tokenizer, tiny_cfg):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_model(tiny_cfg, tokenizer)
    assert torch.equal(before, torch.get_rng_state())
    b = build_model(tiny_cfg, tokenizer)
    c = build_model(ModelConfig(**{**tiny_cfg.__dict__, "seed": 4}), tokenizer)
    wa, wb, wc = (m.model.layers[0].mlp.up_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_qwen2_family_and_dtype(tokenizer):
    cfg = from_dict(ModelConfig, {"family": "qwen2", "hidden_size": 32, "num_attention_heads": 2,
                                  "num_hidden_layers": 1, "dtype": "bfloat16"})
    model = build_model(cfg, tokenizer)
    assert model.config.model_type == "qwen2"
    assert model.dtype == torch.bfloat16


def test_gradient_checkpointing_flag(tokenizer, tiny_cfg):
    model = build_model(ModelConfig(**{**tiny_cfg.__dict__, "gradient_checkpointing": True}), tokenizer)
    assert model.is_activation_checkpointing


@pytest.mark.parametrize(("data", "fragment"), [
    ({"hidden_size": 30, "num_attention_heads": 4}, "divisible"),
    ({"num_attention_heads": 4, "num_key_value_heads": 3}, "num_key_value_heads"),
    ({"family": "lama"}, "llama"),
    ({"dtype": "fp8"}, "dtype"),
    ({"source": "pretrained"}, "path"),
    ({"hiden_size": 8}, "Did you mean 'hidden_size'"),
])
def test_bad_configs_name_the_key(data, fragment):
    with pytest.raises(ConfigError, match=fragment):
        from_dict(ModelConfig, data, where="parameters.yml:student")


def test_pretrained_round_trip(tmp_path, tokenizer, tiny_cfg):
    model = build_model(tiny_cfg, tokenizer)
    save_hf_dir(model, tokenizer, tmp_path / "m")
    cfg = ModelConfig(source="pretrained", path=str(tmp_path / "m"))
    again = build_model(cfg, tokenizer)
    for (name, p), (_, q) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(p, q), name
    loaded, tok = load_model_dir(tmp_path / "m")
    assert tok.get_vocab() == tokenizer.get_vocab()
    assert torch.equal(loaded.model.embed_tokens.weight, model.model.embed_tokens.weight)


def test_load_model_dir_names_a_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model_dir(tmp_path)


def test_load_model_dir_names_the_dir_of_a_truncated_weights_file(tmp_path, tokenizer):
    model = build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                    max_position_embeddings=32), tokenizer)
    save_hf_dir(model, tokenizer, tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5])  # cut inside the 8-byte header length
    with pytest.raises(ModelLoadError) as err:
        load_model_dir(tmp_path / "m")
    message = str(err.value)
    assert f"cannot load the model directory {tmp_path / 'm'}" in message
    assert "truncated or corrupt: rerun the pipeline that writes it" in message


def test_shared_vocab_accepts_equal_and_names_first_difference(tokenizer):
    check_shared_vocab(tokenizer, build_tokenizer("\n *+,0123456789:=aitw"))
    # Alphabet without "+": ids 0-7 are specials/tags, then sorted chars "\n", " ", "*", "+" ... so id 11 differs
    # ("+" in the arithmetic tokenizer, "," in the other), and sizes differ by one (29 vs 28).
    other = build_tokenizer("\n *,0123456789:=aitw")
    with pytest.raises(ConfigError) as err:
        check_shared_vocab(tokenizer, other)
    message = str(err.value)
    assert "vocab sizes 29 vs 28" in message
    assert "first differing token at id 11: '+' vs ','" in message


def test_model_vocab_too_small_fails(tokenizer):
    arch = AutoConfig.for_model("llama", vocab_size=10, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2)
    model = AutoModelForCausalLM.from_config(arch)
    with pytest.raises(ConfigError, match="10 rows but the tokenizer has 29"):
        check_model_vocab(model, tokenizer)


def test_auto_dtype_is_bfloat16_only_where_the_hardware_multiplies_it(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert not has_fast_bfloat16(cpu) and resolve_dtype("auto", cpu) == "float32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert has_fast_bfloat16(cpu) and resolve_dtype("auto", cpu) == "bfloat16"
    assert resolve_dtype("float32", cpu) == "float32" and resolve_dtype("float16", cpu) == "float16"
    assert not has_fast_bfloat16(torch.device("meta"))
    with pytest.raises(ConfigError, match="dtype='fp8' is not valid"):
        resolve_dtype("fp8")


def test_keep_layers_prunes_a_pretrained_model_and_its_cache_still_lines_up(tmp_path, tokenizer):
    four = ModelConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64,
                       max_position_embeddings=128, seed=5)
    full = build_model(four, tokenizer)
    save_hf_dir(full, tokenizer, tmp_path / "full")
    pruned = build_model(ModelConfig(source="pretrained", path=str(tmp_path / "full"), keep_layers=(0, 3)),
                         tokenizer)
    assert pruned.config.num_hidden_layers == 2 and len(pruned.model.layers) == 2
    # the kept layers are the original layers 0 and 3, weight for weight; embeddings and head are shared
    for new, old in ((0, 0), (1, 3)):
        for (name, p), q in zip(pruned.model.layers[new].state_dict().items(),
                                full.model.layers[old].state_dict().values()):
            assert torch.equal(p, q), name
    assert torch.equal(pruned.get_input_embeddings().weight, full.get_input_embeddings().weight)
    assert [layer.self_attn.layer_idx for layer in pruned.model.layers] == [0, 1]  # KV-cache slots renumbered
    # Incremental decoding with the KV cache gives the logits of one full forward (a stale layer_idx would not).
    ids = torch.tensor([[1, 5, 6, 7, 8, 9]])
    with torch.no_grad():
        whole = pruned(input_ids=ids).logits[0, -1]
        first = pruned(input_ids=ids[:, :-1], use_cache=True)
        step = pruned(input_ids=ids[:, -1:], past_key_values=first.past_key_values, use_cache=True).logits[0, -1]
    torch.testing.assert_close(step, whole, rtol=1e-5, atol=1e-5)
    save_hf_dir(pruned, tokenizer, tmp_path / "pruned")  # a plain 2-layer HF model afterwards
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "pruned").config.num_hidden_layers == 2
    with pytest.raises(ConfigError, match=r"names layer 4 but the model has 4 \(0..3\)"):
        build_model(ModelConfig(source="pretrained", path=str(tmp_path / "full"), keep_layers=(0, 4)), tokenizer)


@pytest.mark.parametrize(("data", "fragment"), [
    ({"keep_layers": [0, 1]}, "keep_layers prunes a pretrained model"),
    ({"source": "pretrained", "path": "org/model", "keep_layers": [2, 1]}, "increasing order"),
    ({"source": "pretrained", "path": "org/model", "keep_layers": []}, "distinct layer indices"),
    ({"source": "pretrained", "path": "data/06_models/no_such_model"}, "does not exist. Point it at an HF"),
    ({"source": "pretrained", "path": "data/06_models/smollm2_135m_instruct/../smollm2_135m_instruct_x"},
     "does not exist"),
])
def test_bad_pretrained_configs_name_the_key(data, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative data/ paths resolve against an empty project
    with pytest.raises(ConfigError, match=fragment):
        from_dict(ModelConfig, data, where="model")


def test_the_missing_smollm2_directory_names_make_smollm2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="make smollm2"):
        from_dict(ModelConfig, {"source": "pretrained", "path": "data/06_models/smollm2_135m_instruct"}, where="m")
