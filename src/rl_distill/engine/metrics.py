"""Metrics: accumulate detached tensors without host syncs, convert to floats every ``log_every`` steps.

One job: the sync point for metrics (architecture principle 7). Losses and rollouts hand back 0-dim tensors (or plain
floats for timings); :class:`MetricAccumulator` keeps running sums on the tensors' device and :meth:`flush` turns the
means since the last flush into floats with one transfer. :class:`MetricHistory` keeps every flushed value by step
for the run summary and survives checkpoints (it is plain JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor


class MetricAccumulator:
    """Running means of named metrics; ``flush()`` returns ``{name: mean}`` as floats and resets."""

    def __init__(self) -> None:
        self._sums: dict[str, Tensor | float] = {}
        self._counts: dict[str, int] = {}

    def add(self, name: str, value: Tensor | float) -> None:
        if isinstance(value, Tensor):
            value = value.detach().float().reshape(())
        self._sums[name] = self._sums[name] + value if name in self._sums else value
        self._counts[name] = self._counts.get(name, 0) + 1

    def add_all(self, prefix: str, metrics: Mapping[str, Tensor | float]) -> None:
        for name, value in metrics.items():
            self.add(f"{prefix}{name}", value)

    def flush(self) -> dict[str, float]:
        names = list(self._sums)
        tensor_names = [n for n in names if isinstance(self._sums[n], Tensor)]
        values: dict[str, float] = {n: float(self._sums[n]) for n in names if n not in tensor_names}
        if tensor_names:  # one device -> host transfer for all tensor metrics
            stacked = torch.stack([self._sums[n].to("cpu") for n in tensor_names]).tolist()
            values.update(zip(tensor_names, stacked))
        means = {n: values[n] / self._counts[n] for n in names}
        self._sums.clear()
        self._counts.clear()
        return means


class MetricHistory:
    """``{name: [(step, value), ...]}`` of every logged value."""

    def __init__(self, data: Mapping[str, list[Any]] | None = None) -> None:
        self.data: dict[str, list[tuple[int, float]]] = {
            k: [(int(s), float(v)) for s, v in rows] for k, rows in (data or {}).items()}

    def record(self, metrics: Mapping[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.data.setdefault(name, []).append((step, float(value)))

    def last(self) -> dict[str, float]:
        return {name: rows[-1][1] for name, rows in self.data.items() if rows}

    def by_step(self) -> list[tuple[int, dict[str, float]]]:
        """``[(step, {name: value})]`` in step order: the history as it was published, one call per step.

        >>> MetricHistory({"a": [[2, 1.0], [1, 0.5]], "b": [[2, 3.0]]}).by_step()
        [(1, {'a': 0.5}), (2, {'a': 1.0, 'b': 3.0})]
        """
        steps: dict[int, dict[str, float]] = {}
        for name, rows in self.data.items():
            for step, value in rows:
                steps.setdefault(step, {})[name] = value
        return sorted(steps.items())

    def to_json(self) -> dict[str, list[list[float]]]:
        return {k: [[s, v] for s, v in rows] for k, rows in self.data.items()}
