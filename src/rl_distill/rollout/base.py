"""The rollout interface: a typed config, a typed batch, and the engine base class every backend implements.

One job: say what a rollout is. An engine takes B prompts and returns N = B*G sampled responses (G per prompt,
grouped contiguously: rows g*G .. g*G+G-1 come from prompt g) as a :class:`RolloutBatch`. Backends (``hf``, ``vllm``)
only implement :meth:`RolloutEngine.sample`; encoding the prompts, cutting responses at eos, masks, decoding and the
old-policy log-probs (one no-grad forward pass of the trainer's policy; or, from engines with
``records_logprobs``, the sampler's own, ``old_logprobs: sampler``) are shared
here, so every backend yields the same batch layout.
Shapes: B prompts, G samples per prompt, N = B*G rows, P prompt columns (left padded), T response columns.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor

from rl_distill.models.prompt_format import render_prompts
from rl_distill.models.scoring import sequence_logprobs
from rl_distill.registry import Registry
from rl_distill.typed_config import check_range, from_dict


@dataclass(frozen=True)
class NoOptions:
    """Engines without options of their own."""


@dataclass(frozen=True)
class RolloutConfig:
    """Sampling settings. ``temperature = 0`` means greedy decoding (validation only; RL needs samples).

    ``generation_batch_size`` / ``logprob_batch_size`` bound memory (rows per ``generate`` call / per scoring
    forward; None = all rows at once). ``engine_options`` go to the engine's own options dataclass.
    ``min_new_tokens``: eos cannot be sampled before this many response tokens (HF ``min_new_tokens``, vLLM
    ``min_tokens``; 0 = off), e.g. for fixed-length speed benchmarks. ``top_k`` keeps the k most likely tokens
    (0 = off) and ``repetition_penalty`` (CTRL, Keskar et al. 2019; 1 = off) divides the positive logits, and
    multiplies the negative ones, of tokens already in the context (R-TAP samples with top-p 0.95, top-k 50 and
    1.05). Like ``top_p``, these shape the sampler only: old-policy and teacher log-probs stay those of the
    unconstrained policy at ``temperature`` (as in TRL and verl).
    """

    engine: str = "hf"
    group_size: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 128
    min_new_tokens: int = 0
    generation_batch_size: int | None = None
    logprob_batch_size: int | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        engine_cls = ROLLOUT_ENGINES.get(self.engine)  # unknown -> error listing the engines
        check_range("group_size", self.group_size, 1)
        check_range("temperature", self.temperature, 0.0)
        check_range("top_p", self.top_p, 0.0, 1.0, lo_open=True)
        check_range("top_k", self.top_k, 0)
        check_range("repetition_penalty", self.repetition_penalty, 0.0, lo_open=True)
        check_range("max_new_tokens", self.max_new_tokens, 1)
        check_range("min_new_tokens", self.min_new_tokens, 0, self.max_new_tokens)
        for name in ("generation_batch_size", "logprob_batch_size"):
            value = getattr(self, name)
            if value is not None:
                check_range(name, value, 1)
        from_dict(engine_cls.Options, self.engine_options, where=f"rollout.engine_options ({self.engine})")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class RolloutBatch:
    """N sampled responses with everything the update needs.

    Attributes:
        prompt_ids: [N, P] left-padded prompt ids (bos first where the tokenizer adds one).
        prompt_mask: [N, P] 1 on real prompt tokens.
        response_ids: [N, T] sampled ids, right padded with pad id after eos.
        response_mask: [N, T] 1 on response tokens up to and including the first eos.
        old_logprobs: [N, T] fp32 log pi_old of each response token (0 where masked), from a no-grad forward pass
            (or recorded by the sampler).
        prompt_index: [N] index (into the B prompts) that each row was sampled from.
        texts: N decoded responses (pad/bos/eos removed, tags kept).
    """

    prompt_ids: Tensor
    prompt_mask: Tensor
    response_ids: Tensor
    response_mask: Tensor
    old_logprobs: Tensor
    prompt_index: Tensor
    texts: list[str]

    @property
    def input_ids(self) -> Tensor:
        """[N, P + T] prompt and response side by side (the layout the scorer expects)."""
        return torch.cat([self.prompt_ids, self.response_ids], dim=1)

    @property
    def attention_mask(self) -> Tensor:
        """[N, P + T]"""
        return torch.cat([self.prompt_mask, self.response_mask.to(self.prompt_mask.dtype)], dim=1)

    @property
    def response_start(self) -> int:
        return self.prompt_ids.shape[1]

    @property
    def response_lengths(self) -> Tensor:
        """[N] number of response tokens (eos included)."""
        return self.response_mask.sum(dim=1)

    def num_tokens(self) -> int:
        """Real tokens in the batch (prompts + responses): the unit of tokens/s."""
        return int(self.prompt_mask.sum().item() + self.response_mask.sum().item())


def encode_prompts(tokenizer: Any, prompts: list[str]) -> tuple[Tensor, Tensor]:
    """[B, P] left-padded ids and mask for ``prompts``, formatted by :func:`~rl_distill.models.prompt_format.
    render_prompts` (through the tokenizer's chat template when it has one; else raw, with the tokenizer's bos)."""
    texts, add_special = render_prompts(tokenizer, prompts)
    enc = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=add_special)
    return enc["input_ids"], enc["attention_mask"]


def pad_token_id(tokenizer: Any) -> int:
    """The id that pads responses: the tokenizer's pad token, else its eos."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def pad_responses(responses: list[list[int]], pad_id: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """``(ids [n, T], mask [n, T])`` long tensors on ``device``: the responses right-padded with ``pad_id`` to the
    longest one (at least one column), mask 1 on real tokens."""
    width = max(1, max((len(r) for r in responses), default=0))
    ids = torch.full((len(responses), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(responses), width), dtype=torch.long)
    for i, row in enumerate(responses):
        if row:
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
    return ids.to(device), mask.to(device)


def response_mask_from_ids(response_ids: Tensor, eos_token_id: int) -> Tensor:
    """[N, T] 1 up to and including the first eos of each row; rows without eos are all 1 (truncated)."""
    is_eos = (response_ids == eos_token_id).long()
    eos_before = is_eos.cumsum(dim=1) - is_eos  # eos strictly before position t
    return (eos_before == 0).long()


def decode_responses(tokenizer: Any, response_ids: Tensor, response_mask: Tensor) -> list[str]:
    """Decode each response without pad/bos/eos (tags and other specials kept)."""
    drop = {tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id} - {None}
    texts = []
    for ids, mask in zip(response_ids.tolist(), response_mask.tolist()):
        kept = [i for i, m in zip(ids, mask) if m and i not in drop]
        texts.append(tokenizer.decode(kept, skip_special_tokens=False, clean_up_tokenization_spaces=False))
    return texts


def finish_rollout(model: torch.nn.Module, tokenizer: Any, prompt_ids: Tensor, prompt_mask: Tensor,
                   response_ids: Tensor, prompt_index: Tensor, cfg: RolloutConfig,
                   with_logprobs: bool = True, sampled_logprobs: Tensor | None = None) -> RolloutBatch:
    """Masks, trimmed width, decoded texts and old log-probs for sampled ``response_ids`` [N, T'] (on any device).

    ``with_logprobs=False`` skips the scoring forward pass (evaluation) and leaves ``old_logprobs`` at zero;
    ``sampled_logprobs`` [N, T'] (recorded by the sampler) become the old log-probs without a forward pass.
    """
    device = prompt_ids.device
    response_ids = response_ids.to(device)
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token: responses cannot be cut")
    mask = response_mask_from_ids(response_ids, tokenizer.eos_token_id)
    width = max(1, int(mask.sum(dim=1).max().item()))
    response_ids, mask = response_ids[:, :width], mask[:, :width]
    response_ids = response_ids.masked_fill(mask == 0, pad_token_id(tokenizer))
    old = (torch.zeros(mask.shape, dtype=torch.float32, device=device) if sampled_logprobs is None
           else sampled_logprobs.to(device)[:, :width] * mask)
    batch = RolloutBatch(
        prompt_ids=prompt_ids, prompt_mask=prompt_mask, response_ids=response_ids, response_mask=mask,
        old_logprobs=old, prompt_index=prompt_index.to(device), texts=decode_responses(tokenizer, response_ids, mask),
    )
    return with_old_logprobs(model, batch, cfg) if with_logprobs and sampled_logprobs is None else batch


def old_policy_logprobs(model: torch.nn.Module, batch: RolloutBatch, cfg: RolloutConfig) -> Tensor:
    """[N, T] fp32 log pi_old of ``batch``'s response tokens: one no-grad, eval-mode forward pass of ``model``.

    The one definition of the old-policy log-probs (every engine, and the trainer when it scores them itself,
    concurrently with the teacher): length-bucketed :func:`sequence_logprobs` at the sampling temperature,
    ``cfg.logprob_batch_size`` rows per forward, zero where ``response_mask`` is 0.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            old = sequence_logprobs(model, batch.input_ids, batch.attention_mask, batch.response_start,
                                    response_mask=batch.response_mask, temperature=cfg.temperature or 1.0,
                                    micro_batch_size=cfg.logprob_batch_size)
    finally:
        model.train(was_training)
    return old * batch.response_mask


def with_old_logprobs(model: torch.nn.Module, batch: RolloutBatch, cfg: RolloutConfig) -> RolloutBatch:
    """``batch`` with ``old_logprobs`` scored by ``model`` (:func:`old_policy_logprobs`)."""
    return dataclasses.replace(batch, old_logprobs=old_policy_logprobs(model, batch, cfg))


class FinishedRows(Protocol):
    """Listens to a rollout while it runs (e.g. to score finished responses with a teacher before the rest are done).

    ``prompts`` is called once, before sampling, with the [N, P] repeated prompts the rows are sampled from;
    ``finished`` is called (on the sampling thread) for each row as soon as it samples eos, with the response ids up
    to and including that eos. Rows that stop at ``max_new_tokens`` are never reported, and engines that cannot
    stream (vLLM, the R-TAP cycle engine) report nothing: a listener must treat the returned batch as the truth.
    """

    def prompts(self, prompt_ids: Tensor, prompt_mask: Tensor) -> None: ...

    def finished(self, row: int, response_ids: list[int]) -> None: ...


class NonFiniteLogitsError(RuntimeError):
    """The policy's next-token distribution held NaN or inf while sampling (finite but overflowing weights)."""


class RolloutEngine(ABC):
    """A sampling backend. Subclasses set ``Options`` (their frozen options dataclass) and implement ``sample``."""

    Options: ClassVar[type] = NoOptions
    #: Whether :meth:`sample_recording` returns the sampler's own log-probs (``old_logprobs: sampler``).
    records_logprobs: ClassVar[bool] = False

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()

    def sync_weights(self, model: torch.nn.Module) -> None:  # noqa: B027 - optional hook, no-op by default
        """Make the sampler use ``model``'s current weights (no-op for engines that sample with ``model`` itself)."""

    @abstractmethod
    def sample(self, model: torch.nn.Module, tokenizer: Any, prompt_ids: Tensor, prompt_mask: Tensor,
               cfg: RolloutConfig, listener: FinishedRows | None = None) -> Tensor:
        """[N, T'] response ids for the already repeated [N, P] prompts (pad id after eos).

        Engines that see rows finish one by one report them to ``listener.finished``; others may ignore it.
        """

    def sample_recording(self, model: torch.nn.Module, tokenizer: Any, prompt_ids: Tensor, prompt_mask: Tensor,
                         cfg: RolloutConfig, listener: FinishedRows | None = None) -> tuple[Tensor, Tensor]:
        """``(response ids [N, T'], the sampler's log-probs of them [N, T'])`` (engines with ``records_logprobs``)."""
        raise NotImplementedError(f"the {type(self).__name__} rollout engine does not record sampling log-probs; "
                                  "use old_logprobs: forward or auto")

    def generate(self, model: torch.nn.Module, tokenizer: Any, prompts: list[str], cfg: RolloutConfig,
                 with_logprobs: bool = True, listener: FinishedRows | None = None,
                 from_sampler: bool = False) -> RolloutBatch:
        """Sample ``cfg.group_size`` responses for each of the B ``prompts``; returns N = B*G rows.

        ``with_logprobs=False`` skips the old-policy scoring pass and leaves ``old_logprobs`` at zero (evaluation,
        or a trainer that scores them later with :func:`with_old_logprobs`, e.g. beside the teacher).
        ``from_sampler`` takes the old log-probs from the sampler (:meth:`sample_recording`) instead of a forward.
        ``listener`` hears of each row as it finishes (:class:`FinishedRows`).
        """
        if not prompts:
            raise ValueError("generate() needs at least one prompt")
        device = next(model.parameters()).device
        ids, mask = encode_prompts(tokenizer, prompts)
        group = cfg.group_size
        prompt_index = torch.arange(len(prompts)).repeat_interleave(group)  # [N]
        ids, mask = ids.repeat_interleave(group, dim=0).to(device), mask.repeat_interleave(group, dim=0).to(device)
        if listener is not None:
            listener.prompts(ids, mask)
        self.sync_weights(model)
        if from_sampler:
            response_ids, sampled = self.sample_recording(model, tokenizer, ids, mask, cfg, listener)
            return finish_rollout(model, tokenizer, ids, mask, response_ids, prompt_index, cfg,
                                  sampled_logprobs=sampled)
        response_ids = self.sample(model, tokenizer, ids, mask, cfg, listener)
        return finish_rollout(model, tokenizer, ids, mask, response_ids, prompt_index, cfg, with_logprobs)


ROLLOUT_ENGINES: Registry[type[RolloutEngine]] = Registry("rollout engine")


def build_rollout_engine(cfg: RolloutConfig) -> RolloutEngine:
    """The engine named by ``cfg.engine`` with its validated ``engine_options``."""
    engine_cls = ROLLOUT_ENGINES.get(cfg.engine)
    options = from_dict(engine_cls.Options, cfg.engine_options, where=f"rollout.engine_options ({cfg.engine})")
    return engine_cls(options)

