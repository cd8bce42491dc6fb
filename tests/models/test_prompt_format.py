"""Prompt formatting: raw prompts without a chat template, ChatML with the system prompt baked in when there is one,
the same text in SFT and rollout, and errors that name the value and the fix."""

from __future__ import annotations

import pytest
import torch

from rl_distill.curation.curation import with_token_counts
from rl_distill.engine.sft_step import sft_data
from rl_distill.models.prompt_format import (
    DEFAULT_SYSTEM_PROMPT,
    PromptFormat,
    apply_prompt_format,
    render_prompts,
    with_default_system,
)
from rl_distill.models.tokenizer import build_tokenizer
from rl_distill.rollout.base import encode_prompts
from rl_distill.tasks.base import Example
from rl_distill.typed_config import ConfigError, from_dict

# A ChatML template like SmolLM2's / Qwen's (which default to their own system message when none is given).
CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\\nDefault<|im_end|>\\n' }}{% endif %}"
          "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,?\n<>|_/+=0123456789:'"


def _tokenizer(template: str | None = None):
    tok = build_tokenizer(ALPHABET)
    tok.chat_template = template
    return tok


def test_without_a_template_prompts_are_raw_and_get_the_bos():
    tok = _tokenizer()
    apply_prompt_format(tok, PromptFormat())  # auto: nothing to apply
    assert tok.chat_template is None
    assert render_prompts(tok, ["ab\n"]) == (["ab\n"], True)
    ids, mask = encode_prompts(tok, ["ab\n"])
    assert ids.tolist() == [[tok.bos_token_id, *tok.encode("ab\n", add_special_tokens=False)]]


def test_the_system_prompt_is_baked_into_the_template_and_every_encoder_uses_it():
    tok = apply_prompt_format(_tokenizer(CHATML), PromptFormat(system_prompt="Use tags."))
    texts, add_special = render_prompts(tok, ["What is 1+2?\n"])
    # the prompt separator is stripped; the template writes the specials, so none are added on top
    assert texts == ["<|im_start|>system\nUse tags.<|im_end|>\n<|im_start|>user\nWhat is 1+2?<|im_end|>\n"
                     "<|im_start|>assistant\n"] and add_special is False
    ids, mask = encode_prompts(tok, ["What is 1+2?\n", "Hi\n"])  # left padded
    expected = tok.encode(texts[0], add_special_tokens=False)
    assert ids[0].tolist() == expected and mask[0].all() and ids[0, 0].item() != tok.bos_token_id
    # SFT lays out the same prompt ids as the rollout
    data = sft_data(tok, [Example(id="x", task="t", difficulty=1, prompt="What is 1+2?\n", trace="3", answer="3")],
                    torch.device("cpu"))
    assert data.input_ids[0, :data.response_start].tolist() == expected
    # a conversation that brings its own system message keeps it
    own = tok.apply_chat_template([{"role": "system", "content": "Mine."}, {"role": "user", "content": "q"}],
                                  tokenize=False)
    assert own.startswith("<|im_start|>system\nMine.<|im_end|>") and "Use tags." not in own


def test_system_prompt_none_keeps_the_templates_own_default():
    tok = apply_prompt_format(_tokenizer(CHATML), PromptFormat(system_prompt=None))
    assert render_prompts(tok, ["q"])[0][0].startswith("<|im_start|>system\nDefault<|im_end|>")


def test_curation_counts_the_templated_prompt():
    import polars as pl

    tok = apply_prompt_format(_tokenizer(CHATML), PromptFormat(system_prompt="S."))
    frame = pl.DataFrame({"prompt": ["ab\n"], "trace": ["<think>x</think><answer>y</answer>"]})
    counted = with_token_counts(frame, tok)
    text = render_prompts(tok, ["ab\n"])[0][0]
    assert counted["prompt_tokens"][0] == len(tok.encode(text, add_special_tokens=False))
    raw = with_token_counts(frame, _tokenizer())
    assert raw["prompt_tokens"][0] == 3  # a, b, newline: the char-level fast path


def test_a_given_template_serves_a_tokenizer_without_one_and_off_removes_it():
    tok = apply_prompt_format(_tokenizer(), PromptFormat(chat_template="on", template=CHATML, system_prompt=None))
    assert render_prompts(tok, ["q"])[1] is False
    apply_prompt_format(tok, PromptFormat(chat_template="off"))
    assert render_prompts(tok, ["q"]) == (["q"], True)


@pytest.mark.parametrize(("fmt", "template", "message"), [
    ({"chat_template": "on"}, None, "has no chat template; give prompt_format.template"),
    ({"chat_template": "always"}, None, "chat_template='always' is not valid. Valid: auto, on, off"),
    ({"chat_template": "off", "template": CHATML}, None, "contradicts a given template"),
    ({}, "{{ raise_exception('System role not supported') }}", "cannot render a system and a user message"),
    ({}, "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}{% endif %}{% endfor %}",
     "drops the user or system message"),
])
def test_bad_formats_fail_naming_the_value_and_the_fix(fmt, template, message):
    with pytest.raises(ConfigError, match=message):
        apply_prompt_format(_tokenizer(template), from_dict(PromptFormat, fmt, where="prompt_format"))


def test_yaml_on_and_off_read_as_booleans_are_accepted():
    assert from_dict(PromptFormat, {"chat_template": True}, where="x").chat_template == "on"
    assert from_dict(PromptFormat, {"chat_template": False}, where="x").chat_template == "off"


def test_the_system_prompt_literal_survives_quotes_and_newlines():
    system = 'Say "hi"\nthen {{ not a tag }} and \\ a backslash.'
    tok = _tokenizer(with_default_system(CHATML, system))
    assert f"<|im_start|>system\n{system}<|im_end|>" in render_prompts(tok, ["q"])[0][0]
    assert "<think>" in DEFAULT_SYSTEM_PROMPT and "<answer>" in DEFAULT_SYSTEM_PROMPT
