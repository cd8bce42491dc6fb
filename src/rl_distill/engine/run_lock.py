"""One run per project directory at a time: an OS file lock plus a record of who holds it.

One job: keep two ``kedro run`` processes from writing the same checkpoints, work directories and models at once (a
second run would otherwise silently resume from the first one's in-flight checkpoints). The lock is
``filelock.FileLock`` on ``<project>/data/.run.lock`` (``flock``: the OS releases it when the holder dies, even by
SIGKILL); beside it ``.run.lock.json`` records the holder: pid, host, start time, command and, once known, its MLflow
run id. A clean exit deletes the record, so a record found by a process that just took the lock belongs to a run that
died: :meth:`RunLock.acquire` returns it, and the caller warns and marks that run's MLflow run KILLED.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

LOCK_NAME = ".run.lock"


class RunLockedError(RuntimeError):
    """Another run holds the project's run lock; the message names its pid, host and command."""


def describe_holder(holder: dict[str, Any]) -> str:
    """A one-line description of a holder record, for messages."""
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {holder.get('started', '?')}"
            f" ({holder.get('command', '?')})")


class RunLock:
    """``data/.run.lock`` of one project (see the module docstring). Not reentrant: one :meth:`acquire` per run."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / LOCK_NAME
        self.record = data_dir / f"{LOCK_NAME}.json"
        self._lock = FileLock(str(self.path), timeout=0)
        self._info: dict[str, Any] = {}

    def holder(self) -> dict[str, Any] | None:
        """The recorded holder, or None (no record, or an unreadable one)."""
        try:
            data = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def acquire(self) -> dict[str, Any] | None:
        """Take the lock now or raise :class:`RunLockedError` naming the holder. Returns the record of a dead
        holder whose lock was taken over (its process is gone; it never cleaned up), else None."""
        try:
            self._lock.acquire()
        except Timeout:
            holder = self.holder() or {}
            raise RunLockedError(
                f"another run is using this project: {describe_holder(holder)} holds {self.path}. Two runs in one "
                "project would write the same checkpoints and models. Wait for it to finish, or stop it "
                f"(kill {holder.get('pid', '<pid>')}) and run again."
            ) from None
        stale = self.holder()
        self._info = {"pid": os.getpid(), "host": socket.gethostname(),
                      "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv)}
        self._write()
        return stale

    def update(self, **info: Any) -> None:
        """Add ``info`` (e.g. ``mlflow_run_id``) to the holder record."""
        self._info.update(info)
        self._write()

    def release(self) -> None:
        """Delete the record, then release the lock (a no-op when not held)."""
        if not self._lock.is_locked:
            return
        self.record.unlink(missing_ok=True)
        self._lock.release()

    def _write(self) -> None:
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._info, indent=1))
        os.replace(tmp, self.record)

