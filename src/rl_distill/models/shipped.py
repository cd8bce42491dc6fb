"""A trained model shipped in the repository, with its provenance: what config and command made it, and a hash.

One job: write (:func:`ship_model`) and check (:func:`verify_shipped`) ``provenance.json`` beside a shipped HF
directory. Real distillation starts from a given, already trained teacher; shipping the miniature's teacher (a few
MB) saves every run the ~20-40 minutes of training it, while ``kedro run --pipelines teacher`` still retrains it
from the same config. ``provenance.json`` holds the parameter block the model was trained with, the command, the
metrics measured at the time and the sha256 of each weights file, so a changed config or a corrupted file is caught
before any training uses the model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROVENANCE = "provenance.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ship_model(model_dir: Path, dest: Path, *, params: Mapping[str, Any], command: str,
               metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Copy ``model_dir`` (config, weights, tokenizer; no training state) to ``dest`` and write its provenance."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for item in Path(model_dir).iterdir():
        if item.is_file() and item.name != "mlflow_run.json":
            shutil.copy2(item, dest / item.name)
    record = {"params": dict(params), "command": command, "metrics": dict(metrics or {}),
              "sha256": {f.name: sha256_file(f) for f in sorted(dest.glob("*.safetensors"))}}
    (dest / PROVENANCE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def verify_shipped(dest: Path, params: Mapping[str, Any], keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The provenance of the shipped model at ``dest``; raises ``ValueError`` naming the problem when its weights
    do not hash to the recorded values or it was trained with other ``params`` than the current config (only the
    top-level ``keys`` of the record are compared when given)."""
    dest = Path(dest)
    record_path = dest / PROVENANCE
    if not record_path.exists():
        raise ValueError(f"{dest} has no {PROVENANCE}: it is not a model shipped by this project "
                         "(see README, 'The shipped teacher').")
    record = json.loads(record_path.read_text())
    for name, digest in record["sha256"].items():
        actual = sha256_file(dest / name)
        if actual != digest:
            raise ValueError(f"{dest / name}: sha256 {actual[:12]}... differs from the recorded {digest[:12]}...; "
                             "the file is corrupted or was replaced. Restore it from git or retrain it.")
    recorded = {k: v for k, v in record["params"].items() if keys is None or k in keys}
    if plain(recorded) != plain(params):
        diff = sorted(k for k in set(recorded) | set(params) if plain(recorded.get(k)) != plain(params.get(k)))
        raise ValueError(f"{dest} was trained with other parameters than the current config (keys {diff} differ); "
                         "retrain it with `kedro run --pipelines teacher` and ship that model, or restore the "
                         "config it was trained with.")
    return record


def plain(value: Any) -> Any:
    """JSON round trip: tuples and lists compare equal, key order does not matter."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))
