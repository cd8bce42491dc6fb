"""Prompt formatting: a task's raw prompt -> the text the model reads, through the tokenizer's chat template.

One job, used by every stage through one function (:func:`render_prompts`, called by
:func:`rl_distill.rollout.base.encode_prompts`): rollout, teacher scoring, SFT, evaluation, reject sampling and
R-TAP all encode prompts there, so they all see the same text.

- A tokenizer **without** a chat template (the char-level miniature): the raw prompt, and the tokenizer adds its bos.
- A tokenizer **with** one (an instruct model's): ``apply_chat_template([system?, user], add_generation_prompt=True)``;
  the template writes its own special tokens, so the text is then encoded with ``add_special_tokens=False`` (no
  double bos).

The format is configured once, in ``data_curation.prompt_format`` (:class:`PromptFormat`), and applied to the
project's shared tokenizer by :func:`apply_prompt_format`: it sets or removes ``tokenizer.chat_template`` and bakes
the system prompt into it as the default first message. The tokenizer is saved in every model directory, so the
format travels with the models (and vLLM, which applies the same template, reads the same file).

The default system prompt is the format instruction of DeepSeek-R1 (Guo et al. 2025, Table 1) in the system-prompt
form Logic-RL (Xie et al. 2025) uses for Knights-and-Knaves, which the RLAD paper follows (without Logic-RL's
K&K-specific last sentence, so it also fits arithmetic).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rl_distill.typed_config import ConfigError, check_choice

#: R1 / Logic-RL format instruction (see the module docstring).
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think><answer> answer here "
    "</answer>."
)
CHAT_MODES = ("auto", "on", "off")
_PROBE = "rl-distill probe question"


@dataclass(frozen=True)
class PromptFormat:
    """``data_curation.prompt_format``.

    ``chat_template``: ``auto`` uses the tokenizer's template when it has one (raw prompts otherwise), ``on``
    requires one (from the tokenizer or ``template``), ``off`` always sends raw prompts. ``template``: a Jinja chat
    template for a tokenizer that has none. ``system_prompt``: the default first message (None: none added; the
    template's own default, if any, applies).
    """

    chat_template: str | bool = "auto"
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
    template: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.chat_template, bool):  # YAML 1.1 reads a bare on / off as true / false
            object.__setattr__(self, "chat_template", "on" if self.chat_template else "off")
        check_choice("prompt_format.chat_template", self.chat_template, CHAT_MODES)
        if self.chat_template == "off" and self.template is not None:
            raise ConfigError("prompt_format: chat_template='off' contradicts a given template; remove one of them.")


def with_default_system(template: str, system_prompt: str) -> str:
    """``template`` preceded by a Jinja line that inserts ``system_prompt`` as the first message unless the
    conversation starts with its own system message."""
    literal = json.dumps(system_prompt)  # a JSON string is a valid Jinja string literal
    head = ("{%- if messages and messages[0]['role'] != 'system' %}"
            f"{{%- set messages = [{{'role': 'system', 'content': {literal}}}] + messages %}}"
            "{%- endif %}")
    return head + template


def apply_prompt_format(tokenizer: Any, fmt: PromptFormat, source: str = "the tokenizer") -> Any:
    """Configure ``tokenizer.chat_template`` for ``fmt`` (in place; returns it). Fails, naming the value and the fix,
    when ``on`` finds no template or the template cannot render a system + user turn with a generation prompt."""
    if fmt.chat_template == "off":
        tokenizer.chat_template = None
        return tokenizer
    template = fmt.template or getattr(tokenizer, "chat_template", None)
    if not template:
        if fmt.chat_template == "on":
            raise ConfigError(f"prompt_format.chat_template='on' but {source} has no chat template; give "
                              "prompt_format.template (a Jinja chat template) or set chat_template: auto.")
        return tokenizer
    if not isinstance(template, str):
        raise ConfigError(f"{source} has several named chat templates ({', '.join(template)}); give "
                          "prompt_format.template.")
    tokenizer.chat_template = with_default_system(template, fmt.system_prompt) if fmt.system_prompt else template
    try:
        text = chat_text(tokenizer, _PROBE)
    except Exception as exc:
        raise ConfigError(f"the chat template of {source} cannot render a system and a user message "
                          f"({type(exc).__name__}: {exc}); set prompt_format.system_prompt: null or give "
                          "prompt_format.template.") from exc
    if _PROBE not in text or (fmt.system_prompt and fmt.system_prompt not in text):
        raise ConfigError(f"the chat template of {source} drops the user or system message; give "
                          "prompt_format.template or set prompt_format.system_prompt: null.")
    return tokenizer


def uses_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_text(tokenizer: Any, prompt: str) -> str:
    """The templated text of one user turn, ending with the assistant's generation prompt."""
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt.rstrip("\n")}],
                                         add_generation_prompt=True, tokenize=False)


def render_prompts(tokenizer: Any, prompts: Sequence[str]) -> tuple[list[str], bool]:
    """``(texts, add_special_tokens)``: what to encode for ``prompts`` (module docstring)."""
    if uses_chat_template(tokenizer):
        return [chat_text(tokenizer, p) for p in prompts], False
    return list(prompts), True
