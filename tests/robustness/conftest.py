"""The robustness catalogue's driver: ``kedro run`` in-process on a project copy, watching which nodes and training
steps ran, so each bad input can be checked for its exit status, its message and that it stopped early enough."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pytest


@dataclass
class Outcome:
    exit_code: int
    message: str  # the exception's text ("" when the run succeeded)
    nodes: list[str] = field(default_factory=list)  # nodes that started
    train_steps: int = 0  # RL / SFT training steps that started


@pytest.fixture
def catalogue_project(project_factory) -> Path:
    return project_factory()


@pytest.fixture
def kedro_run(monkeypatch: pytest.MonkeyPatch):
    """``kedro_run(project, *args)`` -> :class:`Outcome` of ``kedro <args>`` run in this process (Kedro's own CLI
    object, as ``kedro`` on the command line builds it)."""
    from click.testing import CliRunner
    from kedro.framework.cli.cli import KedroCLI
    from kedro.pipeline.node import Node

    import rl_distill.engine.trainer as trainer

    seen: dict[str, list] = {"nodes": [], "steps": []}
    real_run, real_rl, real_sft = Node.run, trainer.rl_step, trainer.sft_step

    def node_run(self, inputs=None):
        seen["nodes"].append(self.name)
        return real_run(self, inputs)

    def counted(real):
        def step(*args, **kwargs):
            seen["steps"].append(1)
            return real(*args, **kwargs)
        return step

    monkeypatch.setattr(Node, "run", node_run)
    monkeypatch.setattr(trainer, "rl_step", counted(real_rl))
    monkeypatch.setattr(trainer, "sft_step", counted(real_sft))
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")

    def run(project: Path, *args: str) -> Outcome:
        seen["nodes"].clear()
        seen["steps"].clear()
        cwd = os.getcwd()
        os.chdir(project)
        try:
            result = CliRunner().invoke(KedroCLI(project), list(args))
        finally:
            os.chdir(cwd)
            while mlflow.active_run() is not None:  # a CLI process ends here; this one goes on to the next case
                mlflow.end_run()
        message = "" if result.exception is None or isinstance(result.exception, SystemExit) else str(
            result.exception)
        return Outcome(result.exit_code, message or result.output, list(seen["nodes"]), len(seen["steps"]))

    return run
