"""Checkpoint directories: atomic writes, manifest verification, skipping broken checkpoints, pruning."""

from __future__ import annotations

import pytest

from rl_distill.models.checkpoint import (
    MARKER,
    CheckpointWarning,
    atomic_dir,
    begin_atomic_dir,
    find_latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    read_manifest_meta,
    step_dir_name,
    verify_checkpoint,
)


def _write(root, step, payload=b"weights"):
    with atomic_dir(root / step_dir_name(step), meta={"step": step}) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "w.bin").write_bytes(payload)
        (tmp / "state.json").write_text("{}")
    return root / step_dir_name(step)


def test_atomic_write_has_manifest_and_no_temp_left(tmp_path):
    path = _write(tmp_path, 5)
    assert path.name == "step_000005"
    assert verify_checkpoint(path) is None
    assert read_manifest_meta(path) == {"step": 5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_000005"]


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "step_000001") as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_rewrite_replaces_existing(tmp_path):
    _write(tmp_path, 3, b"old")
    path = _write(tmp_path, 3, b"new")
    assert (path / "sub" / "w.bin").read_bytes() == b"new"
    assert verify_checkpoint(path) is None


@pytest.mark.parametrize("damage", ["marker", "truncate", "flip", "delete", "manifest"])
def test_corrupt_checkpoints_are_detected(tmp_path, damage):
    path = _write(tmp_path, 1)
    target = path / "sub" / "w.bin"
    if damage == "marker":
        (path / MARKER).unlink()
    elif damage == "truncate":
        target.write_bytes(b"weig")
    elif damage == "flip":
        target.write_bytes(b"weighs")  # same size, different bytes
    elif damage == "delete":
        target.unlink()
    else:
        (path / MARKER).write_text("{not json")
    assert verify_checkpoint(path) is not None


def test_latest_skips_broken_with_warning(tmp_path):
    _write(tmp_path, 2)
    newest = _write(tmp_path, 4)
    (newest / "sub" / "w.bin").write_bytes(b"garbage")  # same size (7), other bytes
    begin_atomic_dir(tmp_path / step_dir_name(6))  # an interrupted write of step 6
    with pytest.warns(CheckpointWarning) as record:
        found = find_latest_checkpoint(tmp_path)
    assert found == (2, tmp_path / "step_000002")
    messages = " ".join(str(w.message) for w in record)
    assert "step_000004" in messages and "checksum mismatch" in messages
    assert ".tmp_step_000006" in messages


def test_latest_of_empty_or_missing_root(tmp_path):
    assert find_latest_checkpoint(tmp_path / "nope") is None
    assert find_latest_checkpoint(tmp_path) is None


def test_prune_keeps_newest_complete(tmp_path):
    for step in (1, 2, 3, 4):
        _write(tmp_path, step)
    deleted = prune_checkpoints(tmp_path, keep_last=2)
    assert [p.name for p in deleted] == ["step_000001", "step_000002"]
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 4]
