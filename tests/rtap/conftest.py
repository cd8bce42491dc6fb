"""Shared fixtures for the R-TAP tests: the arithmetic task, its tokenizer, a tiny policy, and a scripted policy
that writes fixed cycles so recursive rollouts can be checked by hand."""

from __future__ import annotations

import pytest

from rl_distill.models.factory import ModelConfig, build_model
from rl_distill.models.tokenizer import build_tokenizer
from rl_distill.rtap import trajectory
from rl_distill.tasks.registry import get_task


@pytest.fixture(scope="module")
def task():
    return get_task("arithmetic")


@pytest.fixture(scope="module")
def tokenizer(task):
    return build_tokenizer(task.alphabet)


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_model(ModelConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, seed=1), tokenizer)

RIGHT = "<think>1=1</think><answer>{}</answer>"
WRONG = "<think>2=2</think><answer>0</answer>"


# prompt -> what the "policy" writes at cycle t (text, how generation stopped); answers are 3, 4, 6, 8, 9.
SCRIPT = {
    "1+2\n": [(RIGHT.format(3), "answer")],  # right at once: M = 1
    "2+2\n": [(WRONG, "answer"), (RIGHT.format(4), "answer")],  # M = 2
    "3+3\n": [(WRONG, "answer")] * 3,  # never right: M = T = 3
    "4+4\n": [(WRONG, "answer"), ("", "eos")],  # stops by itself after one wrong cycle: M = 1, eos kept
    "4+5\n": [(WRONG, "answer"), ("<think>2+2", "length")],  # ran out of tokens in cycle 2: M = 2, no eos
}
ANSWERS = {"1+2\n": "3", "2+2\n": "4", "3+3\n": "6", "4+4\n": "8", "4+5\n": "9"}


@pytest.fixture
def scripted(monkeypatch, tokenizer):
    calls = []

    def fake_generate_cycle(model, tok, contexts, cfg, batch_size=None, forced=False):
        # The scripted "sampler" gives token k of a cycle the log-prob -(k + 1) / 100 and its eos -0.5, so the
        # tests can follow each kept token's recorded log-prob. A call with max_new_tokens=1 is the eos peek:
        # it writes the first token of what the script has next (eos when the script has nothing more).
        out = []
        for ctx in contexts:
            text = tok.decode(ctx, skip_special_tokens=False).replace("<bos>", "")
            prompt = text.split("\n")[0] + "\n"
            t = text.count("</answer>")
            calls.append((prompt, t, cfg.max_new_tokens, forced))
            cycle, stop = SCRIPT[prompt][t] if t < len(SCRIPT[prompt]) else ("", "eos")
            ids = tok.encode(cycle, add_special_tokens=False)
            if cfg.max_new_tokens == 1 and ids:
                ids, stop = ids[:1], "length"
            out.append(trajectory.SampledCycle(ids, stop, [-(k + 1) / 100 for k in range(len(ids))],
                                               eos_logprob=-0.5 if stop == "eos" else None))
        return out

    monkeypatch.setattr(trajectory, "generate_cycle", fake_generate_cycle)
    return calls


