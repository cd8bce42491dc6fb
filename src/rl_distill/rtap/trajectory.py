"""Recursive think-answer rollouts for R-TAP: cycle-by-cycle generation, first-correct cycle M, truncation after M.

One job: sample N = B*G trajectories of up to C think-answer cycles and turn them into a
:class:`~rl_distill.rollout.base.RolloutBatch` the GRPO update can consume, plus the per-trajectory facts the R-TAP
rewards need (R-TAP, Lee, Chee, Ro, arXiv 2603.02099, Sec. 3 "recursive rollouts"; method.md section 5):

- Cycle t+1 is generated conditioned on the question and cycles 1..t; each cycle's generation stops at
  ``</answer>`` (the stop token; with a tokenizer that splits the tag, e.g. BPE, the stop string) or eos.
  **[choice]** A cycle that hits the per-cycle token cap without ``</answer>``, or an eos, ends the trajectory;
  the trajectory then has the cycles present so far (M is defined over them).
- M = the 1-indexed first cycle whose answer verifies correct; M = the number of cycles present (C when all were
  generated) if none is. Everything after cycle M is cut: the cut tokens are not in the response, so they carry no
  loss.
- Every kept token is a token the policy sampled, and nothing is appended: an eos ends the kept response only
  when the policy sampled it right after cycle M (or as cycle M's own stop). **[choice]** ``sample_eos`` (default
  on): where generation stopped for the policy (``stop_at_correct`` after a correct cycle M, or the T-th cycle
  closed with ``</answer>``), one more token is sampled; if it is eos it is kept, with its sampling log-prob, and
  trained on like every other token, else it is dropped (it would start a cut cycle). The policy is then rewarded
  for stopping after its first correct answer only when it did stop, the effect R-TAP reports (output tokens
  14.5k -> 4.4k). Off: no extra token is sampled.
- **[choice]** ``force_cycles`` (default on; the paper: a trajectory has T cycles unless one is correct first): cycles
  2..T are generated even where the policy would end its reply after ``</answer>``; eos and ``</answer>`` cannot be
  the first token of such a cycle (the sampler is shaped as by ``min_new_tokens``; log-probs stay the
  unconstrained policy's). Without it a policy that always stops after one cycle is never shown a second one. Off:
  the policy may end the trajectory after any cycle.
- **[choice]** With ``stop_at_correct`` (default) a trajectory stops generating as soon as a cycle is correct: the
  cycles after M would be cut anyway, so the loss and all rewards are unchanged and the CPU is spared.
- Old-policy log-probs come from one no-grad forward pass over ``prompt + kept response`` with the shared
  old-policy scorer (:func:`rl_distill.rollout.base.old_policy_logprobs`), as for every other rollout engine; the
  sampler's own log-probs of the kept tokens are recorded too (:class:`~rl_distill.rollout.hf.SampledLogprobs`,
  same semantics) and replace that pass with ``old_logprobs: sampler``.

Shapes: B prompts, G samples per prompt, N = B*G rows, C max cycles, P prompt columns, T response columns.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformers import LogitsProcessorList, SuppressTokensAtBeginLogitsProcessor

from rl_distill.rollout.base import (
    RolloutBatch,
    RolloutConfig,
    decode_responses,
    encode_prompts,
    pad_responses,
    pad_token_id,
    with_old_logprobs,
)
from rl_distill.rollout.hf import SampledLogprobs, generation_config
from rl_distill.tasks.base import Task, Verdict
from rl_distill.tasks.format import ANSWER_CLOSE, is_well_formed

# ---------------------------------------------------------------------------------------------- pure functions


def first_correct_cycle(correct: Sequence[bool]) -> int:
    """M (1-indexed): the first correct cycle, or ``len(correct)`` (the last present cycle) when none is correct.

    >>> first_correct_cycle([False, True, True]), first_correct_cycle([False, False]), first_correct_cycle([True])
    (2, 2, 1)
    """
    if not correct:
        raise ValueError("a trajectory has at least one cycle")
    for t, ok in enumerate(correct, start=1):
        if ok:
            return t
    return len(correct)


def cycle_spans(cycle_lengths: Sequence[int]) -> list[tuple[int, int]]:
    """Half-open token spans ``[start, end)`` of consecutive cycles in the concatenated response.

    >>> cycle_spans([3, 2, 4])
    [(0, 3), (3, 5), (5, 9)]
    """
    spans, start = [], 0
    for length in cycle_lengths:
        spans.append((start, start + length))
        start += length
    return spans


def truncate_after(cycle_ids: Sequence[Sequence[int]], m: int,
                   eos_id: int | None = None) -> tuple[list[int], list[tuple[int, int]]]:
    """Kept response ids (cycles 1..M, then ``eos_id`` unless None) and the kept cycles' spans.

    >>> truncate_after([[5, 6], [7], [8, 9]], m=2)
    ([5, 6, 7], [(0, 2), (2, 3)])
    >>> truncate_after([[5, 6], [7], [8, 9]], m=2, eos_id=2)
    ([5, 6, 7, 2], [(0, 2), (2, 3)])
    """
    if not 1 <= m <= len(cycle_ids):
        raise ValueError(f"M={m} outside the {len(cycle_ids)} cycles present")
    kept = [list(c) for c in cycle_ids[:m]]
    ids = [tok for cycle in kept for tok in cycle]
    if eos_id is not None:
        ids.append(eos_id)
    return ids, cycle_spans([len(c) for c in kept])


def ends_with_eos(stops: Sequence[str], m: int, eos_after: bool) -> bool:
    """Whether the kept response (cycles 1..M) ends with eos; ``stops[t-1]`` is how cycle t's generation stopped.

    Only a sampled eos is kept: cycle M itself stopped by eos, or ``eos_after`` (the policy sampled eos right after
    its last generated cycle) with M that last cycle. Nothing is ever appended.

    >>> ends_with_eos(["answer", "answer"], m=1, eos_after=False)
    False
    >>> ends_with_eos(["answer"], m=1, eos_after=True)
    True
    >>> ends_with_eos(["answer", "answer"], m=1, eos_after=True)
    False
    >>> ends_with_eos(["answer", "eos"], m=2, eos_after=False)
    True
    """
    return stops[m - 1] == "eos" or (eos_after and m == len(stops))


def truncation_mask(cycle_lengths: Sequence[int], m: int, width: int) -> Tensor:
    """[width] loss mask over an untruncated response: 1 on the tokens of cycles 1..M, 0 after (and on padding).

    >>> truncation_mask([2, 1, 2], m=2, width=6).tolist()
    [1, 1, 1, 0, 0, 0]
    """
    kept = sum(cycle_lengths[:m])
    mask = torch.zeros(width, dtype=torch.long)
    mask[: min(kept, width)] = 1
    return mask


# ---------------------------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class RecursiveRollout:
    """A recursive rollout: the GRPO batch of kept responses and the per-trajectory R-TAP facts.

    Attributes:
        batch: the :class:`RolloutBatch` of kept responses (cycles 1..M), N rows.
        prompts: N prompt strings (row n's question).
        m: [N] long, first-correct cycle M (1-indexed) = number of kept cycles.
        num_generated: [N] long, cycles generated before truncation.
        cycle_spans: per row, the ``[start, end)`` token spans of the kept cycles in ``batch.response_ids``.
        cycle_texts: per row, the decoded text of every generated cycle (kept and cut).
        cycle_correct: per row, whether each generated cycle's answer verifies correct.
        cycle_well_formed: per row, whether each generated cycle is one well-formed think-answer cycle.
        cycle_stops: per row, how each generated cycle's generation stopped ("answer", "eos" or "length").
        sampled_logprobs: [N, T] fp32, the sampler's log-prob of every kept token (0 on padding); equal to the
            old-policy forward pass's up to float error.
    """

    batch: RolloutBatch
    prompts: list[str]
    m: Tensor
    num_generated: Tensor
    cycle_spans: list[list[tuple[int, int]]]
    cycle_texts: list[list[str]]
    cycle_correct: list[list[bool]]
    cycle_well_formed: list[list[bool]]
    cycle_stops: list[list[str]]
    sampled_logprobs: Tensor

    @property
    def answer_correct(self) -> Tensor:
        """[N] bool: the final kept answer (cycle M) is correct."""
        return torch.tensor([c[m - 1] for c, m in zip(self.cycle_correct, self.m.tolist())], dtype=torch.bool)

    def kept_cycle_texts(self) -> list[list[str]]:
        return [texts[:m] for texts, m in zip(self.cycle_texts, self.m.tolist())]


def _answer_close_ids(tokenizer: Any) -> list[int]:
    """The token ids of ``</answer>``: one for the char-level tokenizer (a tag token), several for a BPE vocabulary
    (SmolLM2: ``</``, ``answer``, ``>``), where generation stops on the string instead (:func:`generate_cycle`)."""
    ids = tokenizer.encode(ANSWER_CLOSE, add_special_tokens=False)
    if not ids:
        raise ValueError(f"the tokenizer encodes {ANSWER_CLOSE!r} to no tokens; R-TAP's cycles stop at it.")
    return ids


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module  # DDP wrapper: generate and parameters live on the inner model
    return model


def _left_pad(rows: list[list[int]], pad_id: int, device: torch.device) -> tuple[Tensor, Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
    return ids.to(device), mask.to(device)


@dataclass(frozen=True)
class SampledCycle:
    """One sampled cycle: its token ids, how generation stopped, and the sampler's log-probs of those ids.

    ``stop`` is ``"answer"`` (the cycle ends with ``</answer>``, included), ``"eos"`` (eos sampled: not in ``ids``;
    its log-prob is ``eos_logprob``) or ``"length"`` (the per-cycle cap was reached). ``logprobs[k]`` is
    ``log_softmax(logits / T)[ids[k]]`` of the policy that sampled it (:class:`SampledLogprobs`).
    """

    ids: list[int]
    stop: str
    logprobs: list[float]
    eos_logprob: float | None = None


def generate_cycle(model: torch.nn.Module, tokenizer: Any, contexts: list[list[int]], cfg: RolloutConfig,
                   batch_size: int | None = None, *, forced: bool = False) -> list[SampledCycle]:
    """Sample one cycle after each context (token ids, bos included), recording the sampler's log-probs.

    Generation stops at ``</answer>`` or eos, or after ``cfg.max_new_tokens``. The sampling distribution is the
    HF engine's explicit one. ``forced``: the cycle must start, so eos and ``</answer>`` cannot be its first token
    (HF's ``SuppressTokensAtBeginLogitsProcessor``, applied after the recorder: like ``min_new_tokens`` it shapes
    the sampler only, and the recorded log-probs stay the unconstrained policy's).
    """
    stop_ids, eos_id = _answer_close_ids(tokenizer), tokenizer.eos_token_id
    single = len(stop_ids) == 1
    stop_id = stop_ids[0] if single else None
    pad_id = pad_token_id(tokenizer)
    gen_cfg = copy.deepcopy(generation_config(tokenizer, cfg))
    gen_cfg.eos_token_id = [eos_id, stop_id] if single else [eos_id]
    extra: dict[str, Any] = {}
    if not single:  # a multi-token tag: HF's StopStringCriteria ends a row once its text holds the tag
        gen_cfg.stop_strings = [ANSWER_CLOSE]
        extra["tokenizer"] = tokenizer
    first_banned = [eos_id, stop_id] if single else [eos_id]
    inner = _unwrap(model)
    device = next(inner.parameters()).device
    step = batch_size or len(contexts)
    out: list[SampledCycle] = []
    was_training = inner.training
    inner.eval()
    try:
        with torch.no_grad():
            for lo in range(0, len(contexts), step):
                ids, mask = _left_pad(contexts[lo:lo + step], pad_id, device)
                recorder = SampledLogprobs(cfg.temperature)
                processors = [recorder]
                if forced:
                    processors.append(SuppressTokensAtBeginLogitsProcessor(first_banned, ids.shape[1],
                                                                           device=str(device)))
                new = inner.generate(input_ids=ids, attention_mask=mask, generation_config=gen_cfg,
                                     logits_processor=LogitsProcessorList(processors), **extra)[:, ids.shape[1]:]
                logprobs = recorder.logprobs(new)
                for row, row_lp in zip(new.tolist(), logprobs.tolist()):
                    out.append(_cut_cycle(row, row_lp, stop_id, eos_id) if single
                               else _cut_cycle_at_text(tokenizer, row, row_lp, eos_id))
    finally:
        inner.train(was_training)
    return out


def _cut_cycle(row: list[int], logprobs: list[float], stop_id: int, eos_id: int) -> SampledCycle:
    for k, tok in enumerate(row):
        if tok == stop_id:
            return SampledCycle(row[: k + 1], "answer", logprobs[: k + 1])
        if tok == eos_id:
            return SampledCycle(row[:k], "eos", logprobs[:k], eos_logprob=logprobs[k])
    return SampledCycle(row, "length", logprobs[: len(row)])


def _cut_cycle_at_text(tokenizer: Any, row: list[int], logprobs: list[float], eos_id: int) -> SampledCycle:
    """:func:`_cut_cycle` for a multi-token ``</answer>``: the cycle ends with the first token whose prefix decodes to
    text holding the tag (however the policy spelled it in tokens), or at eos, or at the cap."""
    end = next((k for k, tok in enumerate(row) if tok == eos_id), len(row))
    if ANSWER_CLOSE in decode_cycle(tokenizer, row[:end]):
        for k in range(end):
            if ANSWER_CLOSE in decode_cycle(tokenizer, row[: k + 1]):
                return SampledCycle(row[: k + 1], "answer", logprobs[: k + 1])
    if end < len(row):
        return SampledCycle(row[:end], "eos", logprobs[:end], eos_logprob=logprobs[end])
    return SampledCycle(row, "length", logprobs[: len(row)])


def decode_cycle(tokenizer: Any, ids: list[int]) -> str:
    """Text of a cycle's ids without pad/bos/eos (the tags are kept)."""
    drop = {tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id} - {None}
    return tokenizer.decode([i for i in ids if i not in drop], skip_special_tokens=False,
                            clean_up_tokenization_spaces=False)


def recursive_rollout(model: torch.nn.Module, tokenizer: Any, task: Task, prompts: list[str], answers: list[str],
                      cfg: RolloutConfig, *, max_cycles: int = 4, stop_at_correct: bool = True,
                      sample_eos: bool = True, force_cycles: bool = True, with_logprobs: bool = True,
                      from_sampler: bool = False) -> RecursiveRollout:
    """Sample ``cfg.group_size`` recursive trajectories per prompt (N = B*G rows, grouped contiguously).

    ``cfg.max_new_tokens`` is the per-cycle token cap; ``max_cycles`` is the paper's T (4). ``with_logprobs=False``
    leaves the batch's ``old_logprobs`` at zero (the caller scores them with
    :func:`~rl_distill.rollout.base.with_old_logprobs`); ``from_sampler`` takes them from the sampler instead of a
    forward pass. ``sample_eos`` and ``force_cycles``: see the module docstring.
    """
    if not prompts or len(prompts) != len(answers):
        raise ValueError(f"need matching non-empty prompts and answers, got {len(prompts)} and {len(answers)}")
    group, eos_id = cfg.group_size, tokenizer.eos_token_id
    prompt_ids, prompt_mask = encode_prompts(tokenizer, prompts)  # [B, P] left padded
    prompt_rows = [row[mask.bool()].tolist() for row, mask in zip(prompt_ids, prompt_mask)]
    n = len(prompts) * group
    row_prompt = [i // group for i in range(n)]
    cycles: list[list[SampledCycle]] = [[] for _ in range(n)]
    texts: list[list[str]] = [[] for _ in range(n)]
    correct: list[list[bool]] = [[] for _ in range(n)]
    formed: list[list[bool]] = [[] for _ in range(n)]
    eos_after: list[float | None] = [None] * n  # log-prob of an eos sampled right after the last generated cycle

    def context(i: int) -> list[int]:
        return prompt_rows[row_prompt[i]] + [t for c in cycles[i] for t in c.ids]

    active, halted = list(range(n)), []  # halted: generation stopped here, not by the policy
    for t in range(max_cycles):
        if not active:
            break
        results = generate_cycle(model, tokenizer, [context(i) for i in active], cfg, cfg.generation_batch_size,
                                 forced=force_cycles and t > 0)
        still = []
        for i, cycle in zip(active, results):
            if cycle.stop == "eos" and not cycle.ids and cycles[i]:
                eos_after[i] = cycle.eos_logprob  # the policy stopped right after its previous cycle
                continue
            text = decode_cycle(tokenizer, cycle.ids)
            cycles[i].append(cycle)
            texts[i].append(text)
            ok = task.verify(text, answers[row_prompt[i]]) == Verdict.CORRECT
            correct[i].append(ok)
            formed[i].append(is_well_formed(text, max_cycles=1))
            if cycle.stop == "answer":
                (halted if (stop_at_correct and ok) or t == max_cycles - 1 else still).append(i)
        active = still
    if sample_eos and halted:  # one more token where generation stopped for the policy: kept only if it is eos
        peek = dataclasses.replace(cfg, max_new_tokens=1, min_new_tokens=0)
        for i, cycle in zip(halted, generate_cycle(model, tokenizer, [context(i) for i in halted], peek,
                                                   cfg.generation_batch_size)):
            if cycle.stop == "eos" and not cycle.ids:
                eos_after[i] = cycle.eos_logprob
    stops = [[c.stop for c in row] for row in cycles]
    m_list = [first_correct_cycle(c) for c in correct]
    kept_ids, kept_lps, spans = [], [], []
    for i in range(n):
        m = m_list[i]
        with_eos = ends_with_eos(stops[i], m, eos_after[i] is not None)
        ids, row_spans = truncate_after([c.ids for c in cycles[i]], m, eos_id if with_eos else None)
        lps = [lp for c in cycles[i][:m] for lp in c.logprobs]
        if with_eos:
            lps.append(cycles[i][m - 1].eos_logprob if stops[i][m - 1] == "eos" else eos_after[i])
        kept_ids.append(ids)
        kept_lps.append(lps)
        spans.append(row_spans)
    batch = _finish(model, tokenizer, prompt_ids, prompt_mask, kept_ids, group, cfg, with_logprobs and not from_sampler)
    sampled = _pad_logprobs(kept_lps, batch.response_mask)
    if from_sampler:
        batch = dataclasses.replace(batch, old_logprobs=sampled)
    return RecursiveRollout(
        batch=batch, prompts=[prompts[row_prompt[i]] for i in range(n)],
        m=torch.tensor(m_list, dtype=torch.long), num_generated=torch.tensor([len(c) for c in cycles]),
        cycle_spans=spans, cycle_texts=texts, cycle_correct=correct, cycle_well_formed=formed,
        cycle_stops=stops, sampled_logprobs=sampled,
    )


def _pad_logprobs(rows: list[list[float]], response_mask: Tensor) -> Tensor:
    """[N, T] fp32 sampler log-probs laid out like ``response_mask`` (0 on padding)."""
    out = torch.zeros(response_mask.shape, dtype=torch.float32)
    for i, row in enumerate(rows):
        if row:
            out[i, : len(row)] = torch.tensor(row, dtype=torch.float32)
    return out.to(response_mask.device) * response_mask


def _finish(model: torch.nn.Module, tokenizer: Any, prompt_ids: Tensor, prompt_mask: Tensor,
            responses: list[list[int]], group: int, cfg: RolloutConfig, with_logprobs: bool) -> RolloutBatch:
    """Right-pad the kept responses, mask them, decode them and (``with_logprobs``) score the old log-probs."""
    device = next(model.parameters()).device
    response_ids, response_mask = pad_responses(responses, pad_token_id(tokenizer), device)
    prompt_index = torch.arange(prompt_ids.shape[0]).repeat_interleave(group)  # [N]
    batch = RolloutBatch(
        prompt_ids=prompt_ids.repeat_interleave(group, dim=0).to(device),
        prompt_mask=prompt_mask.repeat_interleave(group, dim=0).to(device),
        response_ids=response_ids, response_mask=response_mask,
        old_logprobs=torch.zeros(response_mask.shape, dtype=torch.float32, device=device),
        prompt_index=prompt_index.to(device), texts=decode_responses(tokenizer, response_ids, response_mask),
    )
    return with_old_logprobs(model, batch, cfg) if with_logprobs else batch
