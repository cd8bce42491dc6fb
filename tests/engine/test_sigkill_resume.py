"""kill -9 at the worst moments, then resume: the final weights are bit-identical to an uninterrupted run (issue 17).

The killed run is a real child process that SIGKILLs itself (tests/engine/killed_train.py): no ``finally`` runs, no
file is closed cleanly. The uninterrupted reference and the resume run in this process with the same code and data.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from rl_distill.models.checkpoint import TMP_PREFIX, CheckpointWarning, list_checkpoints

from .killed_train import KILLS, build_student, run

SCRIPT = Path(__file__).with_name("killed_train.py")

# What the checkpoint root holds after each kill: complete checkpoints, and whether a partial directory is left.
AFTER_KILL = {
    "weights": ([2], True),   # the step-4 directory is still a temporary one, with a torn weights file
    "manifest": ([2], True),  # same, with a torn manifest
    "prune": ([2, 4], False),  # step 4 was renamed into place; pruning of the older ones never ran
    "streak": ([1, 2], False),  # checkpoint every step, but never inside the NaN streak of steps 3-4
}


@pytest.fixture(scope="module")
def initial():
    return {k: v.clone() for k, v in build_student().state_dict().items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted final weights, with and without the NaN streak."""
    return {streak: {k: v.clone() for k, v in run(tmp_path_factory.mktemp(f"ref{streak}"),
                                                  nan_streak=streak).state_dict().items()}
            for streak in (False, True)}


@pytest.mark.slow  # one child process per case (~10 s each)
@pytest.mark.parametrize("kill", KILLS)
def test_sigkill_then_resume_is_bit_identical(tmp_path, initial, reference, kill):
    out = tmp_path / "run"
    child = subprocess.run([sys.executable, str(SCRIPT), str(out), kill], capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr[-3000:])

    steps, partial_left = AFTER_KILL[kill]
    root = out / "checkpoints"
    assert [s for s, _ in list_checkpoints(root)] == steps
    assert any(p.name.startswith(TMP_PREFIX) for p in root.iterdir()) == partial_left
    assert not (out / "final").exists()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CheckpointWarning)
        resumed = run(out, nan_streak=kill == "streak")
    said = [str(w.message) for w in caught if issubclass(w.category, CheckpointWarning)]
    if partial_left:  # the torn write is named and ignored, never loaded
        assert len(said) == 1 and "ignoring partial checkpoint" in said[0] and "step_000004" in said[0], said
    else:
        assert said == []
    expected = reference[kill == "streak"]
    for name, tensor in resumed.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert not torch.equal(initial["model.embed_tokens.weight"], expected["model.embed_tokens.weight"])  # it trained
    assert not torch.equal(reference[True]["model.embed_tokens.weight"],  # the NaN steps were skipped, not trained
                           reference[False]["model.embed_tokens.weight"])
    assert [s for s, _ in list_checkpoints(root)] == [4, 6] if kill != "streak" else [5, 6]
    assert not any(p.name.startswith(TMP_PREFIX) for p in root.iterdir())
