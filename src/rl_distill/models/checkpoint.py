"""Checkpoint directories on disk: atomic writes, a manifest that proves completeness, discovery, pruning.

One job: the file-system side of checkpoints, independent of what is inside them beyond one check (weights are
finite). A checkpoint is a directory ``<root>/step_000050/`` written under a temporary name (``.tmp_step_000050``) and
renamed into place only after a ``COMPLETE`` marker holding a manifest (size + sha256 of every file) has been
written. A directory without the marker, whose files no longer match the manifest, or whose safetensors weights hold
NaN or inf is partial, corrupt or poisoned: :func:`find_latest_checkpoint` skips it with a warning and never returns
it. :func:`save_hf_dir` writes an HF model directory (safetensors + config + tokenizer).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rl_distill.models.finite import nonfinite_safetensors

MARKER = "COMPLETE"
TMP_PREFIX = ".tmp_"
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointWarning(UserWarning):
    """A checkpoint directory was found but is partial or corrupt; it is skipped."""


def step_dir_name(step: int) -> str:
    return f"step_{step:06d}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MARKER)


def write_manifest(directory: Path, meta: dict[str, Any] | None = None) -> None:
    """Write ``directory/COMPLETE``: the size and sha256 of every other file, plus ``meta`` (e.g. the step)."""
    files = {p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in _files(directory)}
    payload = {"format": 1, "meta": meta or {}, "files": files}
    marker = directory / MARKER
    with marker.open("w") as fh:
        json.dump(payload, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())


def verify_checkpoint(directory: Path) -> str | None:
    """Return None when ``directory`` is a complete checkpoint, else the reason it is not."""
    marker = directory / MARKER
    if not marker.is_file():
        return f"no {MARKER} marker (the write was interrupted)"
    try:
        manifest = json.loads(marker.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"unreadable {MARKER} manifest ({exc})"
    if not files:
        return "empty manifest"
    for rel, entry in files.items():
        path = directory / rel
        if not path.is_file():
            return f"missing file {rel}"
        if path.stat().st_size != entry["size"]:
            return f"size mismatch for {rel} ({path.stat().st_size} != {entry['size']})"
        if _sha256(path) != entry["sha256"]:
            return f"checksum mismatch for {rel}"
    for rel in files:
        if rel.endswith(".safetensors"):
            try:
                bad = nonfinite_safetensors(directory / rel)
            except Exception as exc:  # an unreadable header written whole (the checksum matched)
                return f"unreadable weights {rel} ({exc})"
            if bad is not None:
                return f"non-finite weights in {rel} (tensor '{bad}' holds NaN or inf)"
    return None


def read_manifest_meta(directory: Path) -> dict[str, Any]:
    return json.loads((directory / MARKER).read_text()).get("meta", {})


def temp_dir_for(target: Path) -> Path:
    return target.parent / f"{TMP_PREFIX}{target.name}"


def begin_atomic_dir(target: Path) -> Path:
    """Create (emptying any stale leftover) the temporary directory that will become ``target``."""
    tmp = temp_dir_for(target)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_atomic_dir(tmp: Path, target: Path, meta: dict[str, Any] | None = None) -> Path:
    """Write the manifest into ``tmp`` and rename it to ``target`` (replacing an existing ``target``)."""
    write_manifest(tmp, meta)
    if target.exists():
        stale = target.parent / f"{TMP_PREFIX}old_{target.name}"
        if stale.exists():
            shutil.rmtree(stale)
        target.rename(stale)
        os.replace(tmp, target)
        shutil.rmtree(stale, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target


@contextmanager
def atomic_dir(target: Path, meta: dict[str, Any] | None = None) -> Iterator[Path]:
    """Single-writer helper: ``with atomic_dir(path) as tmp: <write into tmp>``; on success ``tmp`` becomes ``path``.

    If the body raises, the temporary directory is removed and ``target`` is left untouched.
    """
    tmp = begin_atomic_dir(target)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_atomic_dir(tmp, target, meta)


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """All ``step_*`` directories under ``root`` (complete or not), sorted by step ascending."""
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def find_latest_checkpoint(root: Path) -> tuple[int, Path] | None:
    """The newest complete checkpoint under ``root`` as ``(step, path)``; partial/corrupt ones are warned about."""
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.name.startswith(TMP_PREFIX):
                warnings.warn(f"ignoring partial checkpoint {child} (an interrupted write)", CheckpointWarning,
                              stacklevel=2)
    for step, path in reversed(list_checkpoints(root)):
        reason = verify_checkpoint(path)
        if reason is None:
            return step, path
        warnings.warn(f"skipping checkpoint {path}: {reason}; it will not be loaded", CheckpointWarning,
                      stacklevel=2)
    return None


def prune_checkpoints(root: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` complete checkpoints; returns the deleted paths.

    Broken directories are left alone (they are evidence, and never loaded); stale temporary directories are removed.
    """
    complete = [(s, p) for s, p in list_checkpoints(root) if (p / MARKER).is_file()]
    doomed = [p for _, p in complete[: max(0, len(complete) - keep_last)]]
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def save_hf_dir(model: Any, tokenizer: Any, path: Path, state_dict: dict[str, Any] | None = None) -> Path:
    """``save_pretrained`` the model (safetensors) and the tokenizer into ``path``.

    ``state_dict`` lets a caller pass weights gathered from a sharded (FSDP/DeepSpeed) model.
    """
    path.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {} if state_dict is None else {"state_dict": state_dict}
    model.save_pretrained(path, **kwargs)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return path
