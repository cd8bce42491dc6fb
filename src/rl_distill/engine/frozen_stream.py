"""Frozen-model scoring that runs beside the rollout: teacher/reference log-probs of rows as soon as they finish.

One job: hide the step's frozen forwards (RLAD's one teacher forward, a reference forward) behind work the step does
anyway. A :class:`FrozenStream` is the rollout's :class:`~rl_distill.rollout.base.FinishedRows` listener: rows that
sample eos are collected in finish order and, every ``bucket_rows`` of them, scored in a background thread while
generation goes on with the longer rows (generation time is set by the longest response; the finished rows wait).
After the rollout, :meth:`FrozenStream.finish` hands the worker the final batch: it scores what is left (rows still
in a partial bucket, rows cut at ``max_new_tokens``, everything when the engine does not stream) while the caller
runs the policy's own old-log-prob pass, and :meth:`FrozenStream.result` assembles the [N, T] tensors.

Same numbers as :func:`~rl_distill.engine.scoring.score_frozen` on the whole batch up to float rounding (a row's
values do not depend on which rows share its forward pass, except through the summation order of the kernels).
Buckets are cut by finish order alone, never by thread timing, so a run is reproducible and resumes bit for bit.
The worker consumes no random numbers. Torch releases the GIL inside its kernels, so on a CPU with a spare core the
two threads run in parallel (see ``concurrent_scoring`` in :class:`~rl_distill.engine.config.TrainConfig`).
Shapes: N rows, P prompt columns, T response columns, V vocabulary.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rl_distill.engine.scoring import FrozenModel, ScoreSettings, score_frozen_rows
from rl_distill.rollout.base import RolloutBatch, pad_responses

Scores = dict[str, tuple[Tensor, Tensor | None]]  # model name -> (logprobs [n, t], logits [n, t, V] or None)

#: Rows per streamed forward. Measured with ``bench/step.py``'s models (B=16, G=8, 200 new tokens, 2 cores): the
#: teacher time the step still waits for is 0.12 s with 32 rows (75% of rows streamed), 0.01 s with 16 (88%) and
#: 0.004 s with 8 (90%), while smaller buckets slow generation more (GIL contention); 16 is the knee.
STREAM_BUCKET_ROWS = 16


@dataclass(frozen=True)
class _Bucket:
    rows: list[int]
    responses: list[list[int]]


class FrozenStream:
    """Scores rows with ``models`` in a worker thread as the rollout reports them finished (see the module doc).

    Use as a context manager around the rollout: leaving it early (an exception) stops the worker.
    """

    def __init__(self, models: list[FrozenModel], settings: ScoreSettings, pad_token_id: int,
                 bucket_rows: int = STREAM_BUCKET_ROWS) -> None:
        if not models:
            raise ValueError("FrozenStream needs at least one frozen model to score")
        self.models, self.settings, self.pad, self.bucket_rows = models, settings, pad_token_id, bucket_rows
        self._prompt_ids: Tensor | None = None
        self._prompt_mask: Tensor | None = None
        self._pending: list[tuple[int, list[int]]] = []
        self._scored: list[tuple[Tensor, Scores, list[list[int]]]] = []  # (rows, scores, responses) per bucket
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._output: Scores | None = None
        self.busy_s = 0.0  # the worker's own scoring time
        self.streamed_rows = 0
        self._worker = threading.Thread(target=self._run, name="rl-distill-frozen-scoring", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ FinishedRows (called on the rollout thread)
    def prompts(self, prompt_ids: Tensor, prompt_mask: Tensor) -> None:
        self._prompt_ids, self._prompt_mask = prompt_ids, prompt_mask

    def finished(self, row: int, response_ids: list[int]) -> None:
        self._pending.append((row, list(response_ids)))
        if len(self._pending) == self.bucket_rows:
            rows, responses = zip(*self._pending)
            self._jobs.put(_Bucket(list(rows), list(responses)))
            self.streamed_rows += len(rows)
            self._pending = []

    # ------------------------------------------------------------------------------------------- caller thread
    def finish(self, batch: RolloutBatch) -> None:
        """The rollout is over: score the rows not yet scored against the final ``batch`` (in the worker)."""
        self._pending = []  # a partial bucket is scored with the leftovers, from the batch itself
        self._jobs.put(batch)

    def result(self) -> Scores:
        """Wait for the worker; ``{model name: (logprobs [N, T], logits [N, T, V] or None)}``."""
        self._worker.join()
        if self._error is not None:
            raise RuntimeError(f"frozen-model scoring failed in its worker thread: {self._error}") from self._error
        assert self._output is not None
        return self._output

    def close(self) -> None:
        """Stop the worker without a result (after an error in the rollout)."""
        if self._worker.is_alive():
            self._jobs.put(None)
            self._worker.join()

    def __enter__(self) -> FrozenStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- worker thread
    def _run(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                t0 = time.perf_counter()
                if isinstance(job, _Bucket):
                    self._score_bucket(job)
                    self.busy_s += time.perf_counter() - t0
                    continue
                self._output = self._assemble(job)
                self.busy_s += time.perf_counter() - t0
                return
        except BaseException as err:  # noqa: BLE001 - re-raised on the caller's thread by result()
            self._error = err

    def _score_bucket(self, bucket: _Bucket) -> None:
        assert self._prompt_ids is not None and self._prompt_mask is not None
        device = self._prompt_ids.device
        response, mask = pad_responses(bucket.responses, self.pad, device)
        rows = torch.tensor(bucket.rows, dtype=torch.long, device=device)
        prompt_ids, prompt_mask = self._prompt_ids[rows], self._prompt_mask[rows]
        scores = score_frozen_rows(
            self.models, torch.cat([prompt_ids, response], dim=1),
            torch.cat([prompt_mask, mask.to(prompt_mask.dtype)], dim=1), prompt_ids.shape[1], mask,
            dataclasses.replace(self.settings, rows_per_forward=len(bucket.rows)))  # the bucket in one forward
        self._scored.append((rows, scores, bucket.responses))

    def _assemble(self, batch: RolloutBatch) -> Scores:
        n_rows, width = batch.response_ids.shape
        device = batch.response_ids.device
        logprobs = {m.name: torch.zeros(n_rows, width, dtype=torch.float32, device=device) for m in self.models}
        logits: dict[str, Tensor | None] = {m.name: None for m in self.models}

        def place(rows: Tensor, scores: Scores) -> None:
            for name, (lp, lg) in scores.items():
                logprobs[name][rows, : lp.shape[1]] = lp
                if lg is not None:
                    if logits[name] is None:
                        logits[name] = lg.new_zeros(n_rows, width, lg.shape[-1])
                    logits[name][rows, : lg.shape[1]] = lg

        done = torch.zeros(n_rows, dtype=torch.bool, device=device)
        for rows, scores, responses in self._scored:
            for row, ids in zip(rows.tolist(), responses):
                if int(batch.response_lengths[row]) != len(ids) or batch.response_ids[row, : len(ids)].tolist() != ids:
                    raise RuntimeError(f"row {row}: the rollout reported a finished response that is not the one in "
                                       "the returned batch (an engine streaming bug); set concurrent_scoring: off")
            done[rows] = True
            place(rows, scores)
        rest = (~done).nonzero().squeeze(1)
        if rest.numel():
            place(rest, score_frozen_rows(self.models, batch.input_ids[rest], batch.attention_mask[rest],
                                          batch.response_start, batch.response_mask[rest], self.settings))
        return {name: (logprobs[name], logits[name]) for name in logprobs}
