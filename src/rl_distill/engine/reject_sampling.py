"""Reject sampling of a teacher: the training data of offline distillation (method.md section 4).

One job: sample the teacher ``samples_per_prompt`` times per prompt through the rollout engine, verify every sample
with the task's exact verifier, and keep the correct ones (one row per distinct completion) as SFT traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rl_distill.engine.method_params import TeacherSampling
from rl_distill.rollout.base import RolloutConfig, build_rollout_engine
from rl_distill.tasks.base import Example, Verdict


def reject_sample(teacher: torch.nn.Module, tokenizer: Any, task: Any, examples: Sequence[Example],
                  sampling: TeacherSampling, max_new_tokens: int, seed: int) -> list[dict[str, Any]]:
    """Rows ``{id, task, difficulty, prompt, trace, answer}`` of the verified-correct, distinct teacher samples.

    Prompts go ``sampling.batch_size`` at a time; ids are ``<example id>#t<k>`` (k counts the kept samples of the
    batch). Seeded with ``seed`` so the same teacher gives the same data.
    """
    rollout = RolloutConfig(group_size=sampling.samples_per_prompt, temperature=sampling.temperature,
                            max_new_tokens=max_new_tokens)
    engine = build_rollout_engine(rollout)
    torch.manual_seed(seed)
    rows = []
    for lo in range(0, len(examples), sampling.batch_size):
        chunk = examples[lo:lo + sampling.batch_size]
        batch = engine.generate(teacher, tokenizer, [e.prompt for e in chunk], rollout, with_logprobs=False)
        seen = set()
        for text, i in zip(batch.texts, batch.prompt_index.tolist()):
            ex = chunk[i]
            if (ex.id, text) in seen or task.verify(text, ex.answer) != Verdict.CORRECT:
                continue
            seen.add((ex.id, text))
            rows.append({"id": f"{ex.id}#t{len(seen)}", "task": ex.task, "difficulty": ex.difficulty,
                         "prompt": ex.prompt, "trace": text, "answer": ex.answer})
    return rows
