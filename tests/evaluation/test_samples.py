"""Scoring of hand-written completions and the evaluation config (evaluation/samples.py)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from rl_distill.evaluation.samples import (
    GREEDY,
    SAMPLE_SCHEMA,
    SAMPLED,
    Completion,
    EvalConfig,
    score_sample,
    score_samples,
)
from rl_distill.tasks.base import Example, Task, Verdict
from rl_distill.typed_config import ConfigError, from_dict


class ExactTask(Task):
    """A toy task: the answer is the text of the final <answer> block, compared exactly."""

    name = "exact"
    alphabet = "ABab:;"

    def generate(self, n: int, difficulty: int, seed: int, **opts: Any) -> list[Example]:
        raise NotImplementedError

    def parse_answer(self, completion: str) -> str | None:
        return self.answer_text(completion)

    def answers_match(self, predicted: str, answer: str) -> bool:
        return predicted == answer


TASK = ExactTask()
EX = Example(id="p1", task="exact", difficulty=3, prompt="A:b;B:a\n", trace="", answer="Ab")


@pytest.mark.parametrize(
    ("text", "max_cycles", "verdict", "format_ok", "cycles", "oops"),
    [
        ("<think>try A</think><answer>Ab</answer>", None, Verdict.CORRECT, True, 1, 0),
        # two well-formed cycles, the last answer counts; "wait", "hmm", "oops" -> 3 markers
        ("<think>wait, hmm</think><answer>AB</answer><think>oops</think><answer>Ab</answer>", None,
         Verdict.CORRECT, True, 2, 3),
        # the same reply under a one-cycle format cap is badly formed, still correct
        ("<think>wait, hmm</think><answer>AB</answer><think>oops</think><answer>Ab</answer>", 1,
         Verdict.CORRECT, False, 2, 3),
        ("no tags at all", None, Verdict.UNPARSEABLE, False, 0, 0),
        # trailing text breaks the format; the answer block is still read (and wrong)
        ("<think>x</think><answer>aB</answer> trailing", None, Verdict.WRONG, False, 1, 0),
        # a think block without any answer: no cycle with an answer; "Actually" + "let me re-check" -> 2
        ("<think>Actually let me re-check</think>", None, Verdict.UNPARSEABLE, False, 0, 2),
    ],
)
def test_score_completion(text: str, max_cycles: int | None, verdict: Verdict, format_ok: bool, cycles: int,
                          oops: int) -> None:
    score = score_sample(TASK, EX, text, max_cycles=max_cycles)
    assert (score.verdict, score.format_ok, score.n_cycles, score.oops) == (verdict, format_ok, cycles, oops)
    assert score.correct == (verdict == Verdict.CORRECT)


def test_score_completions_frame() -> None:
    other = Example(id="p2", task="exact", difficulty=2, prompt="A:a\n", trace="", answer="A")
    comps = [
        Completion(EX, SAMPLED, 0, "<think>x</think><answer>Ab</answer>", 9),
        Completion(EX, SAMPLED, 1, "<think>wait</think><answer>ab</answer>", 11),
        Completion(other, GREEDY, 0, "garbage", 4),
    ]
    frame = score_samples("rlad", TASK, comps)
    assert dict(frame.schema) == SAMPLE_SCHEMA
    assert frame.rows() == [
        ("rlad", "p1", 3, "sampled", 0, True, "correct", True, 9, 1, 0, None),  # this task has no checkable trace
        ("rlad", "p1", 3, "sampled", 1, False, "wrong", True, 11, 1, 1, None),
        ("rlad", "p2", 2, "greedy", 0, False, "unparseable", False, 4, 0, 0, None),
    ]
    assert score_samples("x", TASK, []).schema == pl.Schema(SAMPLE_SCHEMA)
    with pytest.raises(ValueError, match="decoding"):
        score_samples("x", TASK, [Completion(EX, "beam", 0, "", 0)])


def test_eval_config_defaults_and_validation() -> None:
    cfg = EvalConfig()
    assert (cfg.num_samples, cfg.temperature, cfg.top_p, cfg.greedy) == (8, 0.6, 0.95, True)  # paper decoding
    assert from_dict(EvalConfig, {"num_samples": 4, "max_cycles": 1}).max_cycles == 1
    with pytest.raises(ConfigError, match="num_sample"):
        from_dict(EvalConfig, {"num_sample": 4}, where="parameters_evaluation.yml")
    with pytest.raises(ConfigError, match="temperature"):
        EvalConfig(temperature=0.0)  # the greedy pass is separate: set greedy=true
    with pytest.raises(ConfigError, match="generates nothing"):
        EvalConfig(num_samples=0, greedy=False)
    with pytest.raises(ConfigError, match="engine"):
        EvalConfig(engine="beam")


def test_reference_traces_of_the_real_task_score_as_correct() -> None:
    from rl_distill.tasks import count_oops, get_task

    task = get_task("knights_knaves")
    examples = task.generate(4, difficulty=3, seed=0, self_correction_rate=1.0)
    comps = [Completion(e, SAMPLED, 0, e.trace, len(e.trace)) for e in examples]
    frame = score_samples("reference", task, comps, max_cycles=1)
    assert frame["correct"].all() and frame["format_ok"].all()
    assert frame["n_cycles"].to_list() == [1] * 4
    # every injected self-correction writes one "wait": the Oops count is exactly the lexicon count of the trace
    assert frame["oops"].to_list() == [count_oops(e.trace) for e in examples]
    assert frame["oops"].sum() > 0


def test_max_cycles_cuts_each_reply_after_its_last_allowed_cycle(monkeypatch) -> None:
    """Issue 19, fix 4: a cycle cap at inference. A model that writes three cycles is cut after the second: its text
    and token count stop at the second </answer>, so its answer is cycle 2's, as if generation had stopped there."""
    import torch

    from rl_distill.evaluation import samples
    from rl_distill.models.tokenizer import build_tokenizer
    from rl_distill.rollout import base

    tokenizer = build_tokenizer(TASK.alphabet)
    cycles = ["<think>a</think><answer>A</answer>", "<think>b</think><answer>Ab</answer>",
              "<think>a</think><answer>b</answer>"]
    reply = tokenizer.encode("".join(cycles), add_special_tokens=False) + [tokenizer.eos_token_id]
    short = tokenizer.encode(cycles[0], add_special_tokens=False) + [tokenizer.eos_token_id]

    class Scripted(base.RolloutEngine):
        def sample(self, model, tok, prompt_ids, prompt_mask, cfg, listener=None):
            rows = [reply, short]
            width = max(len(r) for r in rows)
            return torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])

    monkeypatch.setattr(base, "build_rollout_engine", lambda cfg: Scripted())
    model = torch.nn.Linear(1, 1)  # only its device is read

    def run(max_cycles):
        cfg = EvalConfig(num_samples=2, greedy=False, max_cycles=max_cycles, progress=False)
        return samples.generate_completions(model, tokenizer, [EX], cfg)

    free, capped = run(None), run(2)
    assert [c.text for c in free] == ["".join(cycles), cycles[0]]
    assert [c.n_tokens for c in free] == [len(reply), len(short)]
    assert [c.text for c in capped] == ["".join(cycles[:2]), cycles[0]]
    two = len(tokenizer.encode("".join(cycles[:2]), add_special_tokens=False))
    assert [c.n_tokens for c in capped] == [two, len(short)]
    assert score_sample(TASK, EX, capped[0].text, max_cycles=2).correct  # cycle 2's answer "Ab"
    assert not score_sample(TASK, EX, free[0].text).correct  # uncapped, cycle 3's "b" would count
