"""Generate evaluation samples from a model and score each one: the per-sample records behind every table.

One job, in two separable halves:

- scoring (:func:`score_sample`, :func:`score_samples`): completion text -> verdict, format, cycles,
  Oops; pure Python, so hand-written completions can be scored without a model;
- generation (:func:`generate_completions`, :func:`evaluate_model`): k samples per prompt with the paper's
  decoding (temperature 0.6, top-p 0.95; method.md section 6) plus one greedy sample, through the project's
  rollout engine, many prompts per ``generate`` call, prompts bucketed by difficulty and length (a batch runs
  to its longest sample).

Per-sample record columns (:data:`SAMPLE_SCHEMA`): ``model, example_id, difficulty, decoding``
(``"sampled"`` | ``"greedy"``), ``sample_idx, correct, verdict`` (``"correct"`` | ``"wrong"`` |
``"unparseable"``), ``format_ok, n_tokens, n_cycles, oops, trace_consistent`` (the final answer is the one the
reply's own trace reached; null for tasks without a checkable trace).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from rl_distill.tasks.base import Example, Task, Verdict
from rl_distill.tasks.format import is_well_formed, parse_cycles
from rl_distill.tasks.oops import count_oops
from rl_distill.typed_config import ConfigError, check_choice, check_range

SAMPLED, GREEDY = "sampled", "greedy"
SAMPLE_SCHEMA = {
    "model": pl.String, "example_id": pl.String, "difficulty": pl.Int64, "decoding": pl.String,
    "sample_idx": pl.Int64, "correct": pl.Boolean, "verdict": pl.String, "format_ok": pl.Boolean,
    "n_tokens": pl.Int64, "n_cycles": pl.Int64, "oops": pl.Int64, "trace_consistent": pl.Boolean,
}


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation decoding and scoring settings (``parameters_evaluation.yml``).

    ``num_samples`` = k sampled completions per problem at ``temperature`` / ``top_p`` (paper: 0.6 / 0.95),
    plus one greedy completion when ``greedy``. ``prompts_per_batch`` prompts go to the engine per call (each
    expands to ``num_samples`` rows); ``generation_batch_size`` bounds the rows per ``generate`` / scoring
    call and ``engine_options`` go to the rollout engine. ``max_cycles`` caps the think-answer cycles at
    inference (None: any; 4 for R-TAP, the paper's T): a reply ends right after its ``max_cycles``-th
    ``</answer>`` (:func:`cycle_cap_lengths`), and a well-formed reply has at most that many cycles. ``seed`` fixes
    the sampling RNG of the whole evaluation.
    """

    num_samples: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    greedy: bool = True
    max_new_tokens: int = 512
    prompts_per_batch: int = 64
    engine: str = "hf"
    generation_batch_size: int | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)
    max_cycles: int | None = None
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        check_range("num_samples", self.num_samples, 0)
        check_range("temperature", self.temperature, 0.0, lo_open=True)
        check_range("top_p", self.top_p, 0.0, 1.0, lo_open=True)
        check_range("max_new_tokens", self.max_new_tokens, 1)
        check_range("prompts_per_batch", self.prompts_per_batch, 1)
        if self.generation_batch_size is not None:
            check_range("generation_batch_size", self.generation_batch_size, 1)
        check_choice("engine", self.engine, ("hf", "vllm"))
        if self.max_cycles is not None:
            check_range("max_cycles", self.max_cycles, 1)
        if self.num_samples == 0 and not self.greedy:
            raise ConfigError("num_samples=0 with greedy=false generates nothing; set num_samples >= 1 or "
                              "greedy=true.")


@dataclass(frozen=True)
class Completion:
    """One generated (or hand-written) completion of ``example``; ``n_tokens`` = its length in tokens."""

    example: Example
    decoding: str
    sample_idx: int
    text: str
    n_tokens: int


@dataclass(frozen=True)
class SampleScore:
    """What :func:`score_sample` reads off one completion."""

    verdict: Verdict
    format_ok: bool
    n_cycles: int
    oops: int
    trace_consistent: bool | None = None

    @property
    def correct(self) -> bool:
        return self.verdict == Verdict.CORRECT


def score_sample(task: Task, example: Example, text: str, max_cycles: int | None = None) -> SampleScore:
    """Verdict against ``example.answer`` (the task's verifier), well-formedness (at most ``max_cycles``
    cycles), think-answer cycles (segments of :func:`parse_cycles` that hold a complete ``<answer>`` block,
    well formed or not) and the Oops count (:func:`count_oops`, lexicon
    :data:`rl_distill.tasks.oops.OOPS_LEXICON`)."""
    return SampleScore(
        verdict=Verdict(task.verify(text, example.answer)),
        format_ok=bool(is_well_formed(text, max_cycles=max_cycles)),
        n_cycles=sum(c.answer is not None for c in parse_cycles(text)),
        oops=int(count_oops(text)),
        trace_consistent=task.trace_consistent(text),
    )


def score_samples(model_name: str, task: Task, completions: Iterable[Completion],
                  max_cycles: int | None = None) -> pl.DataFrame:
    """Score completions into a frame with :data:`SAMPLE_SCHEMA` (one row per completion, input order)."""
    rows = []
    for comp in completions:
        if comp.decoding not in (SAMPLED, GREEDY):
            raise ValueError(f"decoding must be '{SAMPLED}' or '{GREEDY}', got {comp.decoding!r}.")
        s = score_sample(task, comp.example, comp.text, max_cycles)
        ex = comp.example
        rows.append((model_name, ex.id, int(ex.difficulty), comp.decoding, int(comp.sample_idx), s.correct,
                     s.verdict.value, s.format_ok, int(comp.n_tokens), s.n_cycles, s.oops, s.trace_consistent))
    return pl.DataFrame(rows, schema=SAMPLE_SCHEMA, orient="row")


def _batches(examples: Sequence[Example], size: int) -> list[list[Example]]:
    """Bucket by (difficulty, prompt length) so a batch's longest generation is close to its shortest."""
    ordered = sorted(examples, key=lambda e: (e.difficulty, len(e.prompt), e.id))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


@contextlib.contextmanager
def _seeded(seed: int, model: Any) -> Iterator[None]:
    """Seed torch inside the block, then restore the caller's RNG state (CPU and the model's CUDA device)."""
    import torch

    device = getattr(model, "device", None)
    devices = [device] if device is not None and getattr(device, "type", "cpu") == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def generate_completions(model: Any, tokenizer: Any, examples: Sequence[Example], cfg: EvalConfig,
                         desc: str = "eval") -> list[Completion]:
    """``cfg.num_samples`` sampled completions per example, then one greedy one each when ``cfg.greedy``.

    Generation goes through ``rl_distill.rollout`` (``build_rollout_engine(RolloutConfig(...)).generate``):
    each call gets ``prompts_per_batch`` prompts and returns N = B * G rows grouped by ``prompt_index``; the
    response length is the number of real response tokens (``response_mask`` row sum, eos included as the
    engine counts it), after the ``cfg.max_cycles`` cap.
    """
    # Imported here: the rollout engine pulls in torch and transformers, which scoring alone never needs.
    from tqdm.auto import tqdm

    from rl_distill.rollout.base import RolloutConfig, build_rollout_engine

    passes = ([(SAMPLED, cfg.num_samples, cfg.temperature, cfg.top_p)] if cfg.num_samples > 0 else [])
    passes += [(GREEDY, 1, 0.0, 1.0)] if cfg.greedy else []
    batches = _batches(examples, cfg.prompts_per_batch)
    out: list[Completion] = []
    with _seeded(cfg.seed, model), tqdm(total=len(batches) * len(passes), desc=desc, unit="batch",
                                        disable=not cfg.progress) as bar:
        for decoding, group, temperature, top_p in passes:
            rollout_cfg = _rollout_config(RolloutConfig, cfg, group, temperature, top_p)
            engine = build_rollout_engine(rollout_cfg)
            for batch in batches:
                result = engine.generate(model, tokenizer, [e.prompt for e in batch], rollout_cfg,
                                         with_logprobs=False)  # evaluation needs no old log-probs
                texts, lengths = _capped(result, tokenizer, cfg.max_cycles)  # [N]
                seen: dict[int, int] = {}
                for row, prompt_idx in enumerate(result.prompt_index.tolist()):
                    idx = seen.get(prompt_idx, 0)
                    seen[prompt_idx] = idx + 1
                    out.append(Completion(batch[prompt_idx], decoding, idx, texts[row], int(lengths[row])))
                bar.update(1)
    return out


def cycle_cap_lengths(response_ids: Sequence[Sequence[int]], lengths: Sequence[int], close_ids: Sequence[int],
                      max_cycles: int) -> list[int]:
    """Each response's length once cut right after its ``max_cycles``-th ``</answer>`` (the token sequence
    ``close_ids``); a response with fewer closed cycles keeps ``lengths[i]``. Cutting after generation is exactly
    stopping there: later tokens never change earlier ones.

    >>> cycle_cap_lengths([[5, 7, 5, 7, 5, 7, 2], [5, 7, 2]], [7, 3], close_ids=[7], max_cycles=2)
    [4, 3]
    """
    k, out = len(close_ids), []
    for ids, length in zip(response_ids, lengths):
        seen, cut = 0, length
        for pos in range(length - k + 1):
            if list(ids[pos:pos + k]) == list(close_ids):
                seen += 1
                if seen == max_cycles:
                    cut = pos + k
                    break
        out.append(cut)
    return out


def _capped(result: Any, tokenizer: Any, max_cycles: int | None) -> tuple[list[str], list[int]]:
    """Texts and lengths of a rollout's rows, cut after ``max_cycles`` cycles when set."""
    lengths = result.response_mask.sum(dim=1).tolist()
    if max_cycles is None:
        return list(result.texts), lengths
    from rl_distill.rollout.base import decode_responses
    from rl_distill.tasks.format import ANSWER_CLOSE

    ids = result.response_ids.tolist()
    capped = cycle_cap_lengths(ids, lengths, tokenizer.encode(ANSWER_CLOSE, add_special_tokens=False), max_cycles)
    mask = result.response_mask.clone()
    for row, cut in enumerate(capped):
        mask[row, cut:] = 0
    return decode_responses(tokenizer, result.response_ids, mask), capped


def _rollout_config(config_cls: Any, cfg: EvalConfig, group: int, temperature: float, top_p: float) -> Any:
    """The rollout engine's config for one decoding pass (temperature 0 = greedy)."""
    return config_cls(engine=cfg.engine, group_size=group, temperature=temperature, top_p=top_p,
                      max_new_tokens=cfg.max_new_tokens, generation_batch_size=cfg.generation_batch_size,
                      logprob_batch_size=cfg.generation_batch_size, engine_options=dict(cfg.engine_options))


def evaluate_model(model_name: str, model: Any, tokenizer: Any, task: Task, examples: Sequence[Example],
                   cfg: EvalConfig | None = None) -> pl.DataFrame:
    """Generate and score: the per-sample frame (:data:`SAMPLE_SCHEMA`) of ``model`` on ``examples``.

    Rows: every sampled row first (per example, in the order of ``examples``, ``sample_idx`` 0..k-1), then the
    greedy rows (``sample_idx`` 0). Example ids should be unique: the summary groups samples by id.
    """
    cfg = cfg or EvalConfig()
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        completions = generate_completions(model, tokenizer, examples, cfg, desc=f"eval {model_name}")
    finally:
        if was_training:
            model.train()
    frame = score_samples(model_name, task, completions, max_cycles=cfg.max_cycles)
    order = {e.id: i for i, e in enumerate(examples)}
    return (frame.with_columns(pl.col("example_id").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
            .sort(["decoding", "_o", "sample_idx"], descending=[True, False, False]).drop("_o"))
