"""Which examples each training step sees: a deterministic function of (seed, step), so resuming needs no state.

One job: the data order. Each epoch is a seeded permutation of the examples cut into batches of ``batch_size``
(the last partial batch is dropped). With ``bucketed`` sampling, windows of ``BUCKET_WINDOW`` batches are sorted by
(difficulty, prompt + reference trace length) before cutting and the resulting batches shuffled, so a batch holds
similar prompts: an HF ``generate`` batch runs until its longest sample, and mixing easy and hard prompts makes
every step as slow as the hardest (../shared/docs/miniature.md: 2.8 s at n=3 vs 21 s mixed). ``shuffle`` is plain
random batches. Batches are global; process ``p`` of ``w`` takes the contiguous slice ``p``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from rl_distill.tasks.base import Example

BUCKET_WINDOW = 8


class PromptSampler:
    """``batch(step)`` -> the examples of training step ``step`` (0-based) for this process."""

    def __init__(self, examples: Sequence[Example], batch_size: int, seed: int, mode: str = "bucketed",
                 num_processes: int = 1, process_index: int = 0) -> None:
        if batch_size > len(examples):
            raise ValueError(
                f"a step needs {batch_size} examples but only {len(examples)} were given; lower the batch size "
                "(prompts_per_step or sft.batch_size) or add training examples"
            )
        if batch_size % num_processes:
            raise ValueError(f"batch size {batch_size} must be divisible by the number of processes {num_processes}")
        self.examples = list(examples)
        self.batch_size = batch_size
        self.seed = seed
        self.mode = mode
        self.num_processes = num_processes
        self.process_index = process_index
        self.batches_per_epoch = len(self.examples) // batch_size
        self._plan_epoch: int | None = None
        self._plan: list[list[int]] = []

    def _epoch_plan(self, epoch: int) -> list[list[int]]:
        if self._plan_epoch == epoch:
            return self._plan
        rng = random.Random(f"{self.seed}/{epoch}")
        order = list(range(len(self.examples)))
        rng.shuffle(order)
        order = order[: self.batches_per_epoch * self.batch_size]
        if self.mode == "bucketed":
            window = BUCKET_WINDOW * self.batch_size
            for lo in range(0, len(order), window):
                order[lo:lo + window] = sorted(order[lo:lo + window], key=self._bucket_key)
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.mode == "bucketed":
            rng.shuffle(batches)
        self._plan_epoch, self._plan = epoch, batches
        return batches

    def _bucket_key(self, index: int) -> tuple[int, int]:
        # The reference trace's length is known for every example: it is the SFT target's length, and for RL a
        # proxy of how long the sampled responses run (a K&K trace grows with the position of the solution in
        # the candidate order), so sorting by it keeps padding low in both modes.
        example = self.examples[index]
        return example.difficulty, len(example.prompt) + len(example.trace)

    def global_batch(self, step: int) -> list[Example]:
        epoch, position = divmod(step, self.batches_per_epoch)
        return [self.examples[i] for i in self._epoch_plan(epoch)[position]]

    def batch(self, step: int) -> list[Example]:
        """This process's share of step ``step``'s global batch."""
        full = self.global_batch(step)
        share = self.batch_size // self.num_processes
        return full[self.process_index * share:(self.process_index + 1) * share]
