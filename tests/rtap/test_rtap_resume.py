"""kill -9 in R-TAP's stage 2, then resume: the policy and the confidence generator end bit-identical to an
uninterrupted run (issue 19, fix 5). The killed run is a real child process (tests/rtap/killed_rtap.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rl_distill.models.checkpoint import list_checkpoints
from rl_distill.models.tokenizer import build_tokenizer
from rl_distill.rtap.confidence import ConfidenceGenerator

from .killed_rtap import TASK, build_policy, run

SCRIPT = Path(__file__).with_name("killed_rtap.py")


def _generator_state(path: Path) -> dict[str, torch.Tensor]:
    generator = ConfidenceGenerator.load(path, build_tokenizer(TASK.alphabet))
    return {k: v.clone() for k, v in generator.model.state_dict().items()}


def _assert_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.slow  # a child process plus two short R-TAP runs (~15 s)
def test_sigkill_in_stage_2_then_resume_is_bit_identical(tmp_path) -> None:
    ref_policy, ref = run(tmp_path / "ref")
    ref_weights = {k: v.clone() for k, v in ref_policy.state_dict().items()}
    ref_conf = _generator_state(ref.confidence_dir)
    # Training changed both: the policy moved, and stage 2 moved C_phi away from stage 1.
    initial = build_policy().state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in ref_weights.items())
    stage1 = _generator_state(ref.confidence_stage1_dir)
    assert any(not torch.equal(stage1[k], v) for k, v in ref_conf.items())

    out = tmp_path / "run"
    child = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr[-3000:])
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [2]
    assert (out / "checkpoints" / "step_000002" / "extra" / "confidence" / "update_optimizer.pt").exists()
    assert not (out / "final").exists()

    policy, resumed = run(out)
    assert resumed.train.resumed_from == 2 and resumed.train.final_step == 4
    _assert_equal({k: v.clone() for k, v in policy.state_dict().items()}, ref_weights)
    _assert_equal(_generator_state(resumed.confidence_dir), ref_conf)
