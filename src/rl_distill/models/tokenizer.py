"""The shared char-level tokenizer of the embedded default: one token per character of the task alphabet.

Teacher and student share it, so their vocabularies (and logits) line up for token-level distillation. Layout
(deterministic for a given alphabet): ids 0-3 are the specials ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``; ids
4-7 the four format tags ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` as single tokens; then the
alphabet's characters in sorted order. The tags are ordinary added tokens, not special ones, so ``decode(...,
skip_special_tokens=True)`` drops pad/bos/eos but keeps the tags. Encoding with special tokens prepends
``<bos>``; the training engine appends ``<eos>`` after each completion. Padding is on the left (for batched
generation).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from rl_distill.tasks.base import Task
from rl_distill.tasks.format import TAGS

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
_CHAR_SPLIT = r"[\s\S]"


def alphabet_for(tasks: Iterable[Task]) -> str:
    """Sorted union of the tasks' alphabets (every character their prompts and traces can contain)."""
    return "".join(sorted({c for task in tasks for c in task.alphabet}))


def build_tokenizer(alphabet: str) -> PreTrainedTokenizerFast:
    """A char-level ``PreTrainedTokenizerFast`` over ``alphabet``, specials and tags (module docstring).

    Characters outside ``alphabet`` encode as ``<unk>``. Save with ``save_pretrained(dir)``, reload with
    ``AutoTokenizer.from_pretrained(dir)``.
    """
    chars = sorted(set(alphabet))
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *TAGS, *chars])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(_CHAR_SPLIT), behavior="isolated")  # every char alone
    backend.decoder = decoders.Fuse()  # join tokens without spaces
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAGS])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=1 << 20,
    )


def char_level_added_tokens(tokenizer: Any) -> tuple[str, ...] | None:
    """The added tokens (specials and tags) if ``tokenizer`` is a char-level tokenizer from :func:`build_tokenizer`.

    For such a tokenizer a text's token count is its character count minus ``len(t) - 1`` per occurrence of each
    added token ``t`` (every other character, known or not, is one token), which lets curation count tokens for
    100k rows with string operations. Returns None for any other tokenizer (count by encoding instead).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    spec = json.loads(backend.to_str())
    pre = spec.get("pre_tokenizer") or {}
    if (spec.get("model", {}).get("type") != "WordLevel" or spec.get("normalizer") is not None
            or pre.get("type") != "Split" or pre.get("pattern") != {"Regex": _CHAR_SPLIT}
            or pre.get("behavior") != "Isolated"):
        return None
    return tuple(token["content"] for token in spec.get("added_tokens", []))


def load_tokenizer(path: str) -> Any:
    """An HF tokenizer from ``path`` (directory or hub id), ready for the engine: an eos is required (it ends every
    completion) and the pad token defaults to it. Fails naming the path and the fix."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:
        raise ValueError(f"cannot load a tokenizer from {path!r} ({type(exc).__name__}: {exc}); point "
                         "data_curation.tokenizer_path at an HF directory with tokenizer.json / "
                         "tokenizer_config.json.") from exc
    if tokenizer.eos_token_id is None:
        raise ValueError(f"the tokenizer at {path!r} has no eos token; every completion ends with one. Set "
                         "eos_token in its tokenizer_config.json.")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
