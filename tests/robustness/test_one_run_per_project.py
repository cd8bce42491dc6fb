"""Two ``kedro run`` in one project: the second is refused at once naming the first one's pid; once the first is
SIGKILLed, the next run takes its stale lock over with a warning and marks the dead run's MLflow runs KILLED."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

KEDRO = str(Path(sys.executable).with_name("kedro"))


def _start(project: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1", "COLUMNS": "1000"}  # no wrapping
    return subprocess.Popen([KEDRO, "run", "--env", "smoke", *args], cwd=project, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _squeezed(text: str) -> str:
    """``text`` without whitespace: rich wraps log lines anywhere, even inside a path."""
    return "".join(text.split())


def _wait_for_record(record: Path, proc: subprocess.Popen, timeout: float = 240) -> dict:
    """The lock holder record once it names the MLflow run (the first node has started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-4000:]
        try:
            data = json.loads(record.read_text())
            if data.get("mlflow_run_id"):
                return data
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{record} never named an MLflow run")


@pytest.mark.slow  # three `kedro` subprocesses
def test_second_run_is_refused_and_a_dead_runs_lock_is_taken_over(project_factory) -> None:
    project = project_factory()
    record = project / "data" / ".run.lock.json"
    # A: a long student_init training (far more steps than the test waits for)
    first = _start(project, "--pipelines", "data_curation,student_init",
                   "--params", "student_init.sft.total_steps=100000")
    try:
        holder = _wait_for_record(record, first)
        assert holder["pid"] == first.pid
        second = _start(project, "--pipelines", "data_curation")
        out, _ = second.communicate(timeout=300)
        assert second.returncode == 1, out[-4000:]
        assert _squeezed(f"another run is using this project: pid {first.pid} on host") in _squeezed(out), out[-3000:]
        assert "Running node" not in out  # refused before any node
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert json.loads(record.read_text())["pid"] == first.pid  # a SIGKILLed run cannot clean up

    third = _start(project, "--pipelines", "data_curation")
    out, _ = third.communicate(timeout=300)
    assert third.returncode == 0, out[-4000:]
    expected = f"took over the run lock {project / 'data' / '.run.lock'} of a run that died (pid {first.pid}"
    assert _squeezed(expected) in _squeezed(out), out[-3000:]
    assert not record.exists()  # released at the end of a clean run
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    try:
        assert mlflow.MlflowClient().get_run(holder["mlflow_run_id"]).info.status == "KILLED"
    finally:
        mlflow.set_tracking_uri(None)


def test_mark_run_killed_ends_the_run_and_its_running_descendants(tmp_path) -> None:
    from rl_distill.tracking import mark_run_killed

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        exp = client.create_experiment("e")
        parent = client.create_run(exp).info.run_id
        child = client.create_run(exp, tags={"mlflow.parentRunId": parent}).info.run_id
        done = client.create_run(exp, tags={"mlflow.parentRunId": parent}).info.run_id
        client.set_terminated(done, status="FINISHED")
        grandchild = client.create_run(exp, tags={"mlflow.parentRunId": child}).info.run_id
        other = client.create_run(exp).info.run_id
        assert sorted(mark_run_killed(parent)) == sorted([parent, child, grandchild])
        status = {r: client.get_run(r).info.status for r in (parent, child, done, grandchild, other)}
        assert status == {parent: "KILLED", child: "KILLED", done: "FINISHED", grandchild: "KILLED",
                          other: "RUNNING"}
        assert mark_run_killed("0123456789abcdef0123456789abcdef") == []  # unknown: nothing to mark
    finally:
        mlflow.set_tracking_uri(None)


def _wait_for_checkpoint(work: Path, proc: subprocess.Popen, timeout: float = 240) -> Path:
    """The first complete checkpoint (its COMPLETE manifest is written last) of the run's student_init training."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it was killed: " + proc.stdout.read()[-3000:]
        done = sorted(work.glob("student_init-*/sft/checkpoints/step_*/COMPLETE"))
        if done:
            return done[0].parent
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint appeared under {work}")


@pytest.mark.slow  # two `kedro` subprocesses
def test_a_training_killed_and_resumed_leaves_one_run_with_every_step_once(project_factory) -> None:
    project = project_factory()
    run = ("--pipelines", "data_curation,student_init", "--params",
           "student_init.sft.total_steps=80,student_init.sft.checkpoint.every=20,student_init.sft.log_every=1,"
           "student_init.sft.sft.batch_size=64")
    first = _start(project, *run)
    try:
        checkpoint = _wait_for_checkpoint(project / "data" / "06_models" / "_work", first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    second = _start(project, *run)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out[-4000:]
    assert _squeezed(f"student_init/sft: resuming from step {int(checkpoint.name[5:])} of 80") in _squeezed(out)

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        exp = client.get_experiment_by_name("rl-distill")
        runs = client.search_runs([exp.experiment_id], "attributes.run_name = 'student_init'",
                                  order_by=["attributes.start_time ASC"])
        assert [r.info.status for r in runs] == ["KILLED", "FINISHED"]
        killed, resumed = runs
        assert resumed.data.tags["rl_distill.resumed_from"] == killed.info.run_id
        assert client.get_run(killed.info.run_id).data.tags["rl_distill.resumed_in"] == resumed.info.run_id
        steps = [m.step for m in client.get_metric_history(resumed.info.run_id, "train/loss")]
        assert sorted(steps) == list(range(1, 81))  # every step once: the checkpoint's re-logged, then the rest
        killed_steps = sorted(m.step for m in client.get_metric_history(killed.info.run_id, "train/loss"))
        assert killed_steps[:20] == list(range(1, 21)) and int(checkpoint.name[5:]) <= killed_steps[-1] < 80
        everything = client.search_runs([exp.experiment_id], run_view_type=mlflow.entities.ViewType.ALL)
        assert not [r.info.run_name for r in everything if r.info.status == "RUNNING"]
    finally:
        mlflow.set_tracking_uri(None)
