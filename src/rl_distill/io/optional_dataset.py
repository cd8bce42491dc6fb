"""A Kedro dataset for inputs that may not exist yet: loads ``None`` instead of failing.

The reporting pipeline draws the alpha sweep only when a tuning study has been run
(``kedro run --pipelines tuning`` writes data/08_reporting/tuning_trials.csv); ``kedro run`` without it must
still report. Catalog use::

    tuning_trials_if_any:
      type: rl_distill.io.optional_dataset.OptionalDataset
      dataset: {type: polars.EagerPolarsDataset, file_format: csv, filepath: data/08_reporting/tuning_trials.csv}
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset


class OptionalDataset(AbstractDataset[Any, Any]):
    """Wraps any dataset config: ``load`` returns the data, or ``None`` when the wrapped dataset does not exist."""

    def __init__(self, dataset: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        self._dataset = AbstractDataset.from_config("optional", dict(dataset))
        self.metadata = metadata

    def load(self) -> Any:
        return self._dataset.load() if self._dataset.exists() else None

    def save(self, data: Any) -> None:
        self._dataset.save(data)

    def _exists(self) -> bool:
        return True  # absent data loads as None, which is a valid value of this dataset

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe(), "optional": True}
