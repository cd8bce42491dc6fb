"""Scale-out through accelerate: the same trainer under ``accelerate launch`` with 2 CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("two_process_train.py")
CONFIG = ROOT / "conf" / "accelerate" / "cpu_2proc.yaml"


def _launch(out: Path) -> None:
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [str(accelerate), "launch", "--config_file", str(CONFIG), "--main_process_port", "29517", str(SCRIPT),
           str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_two_cpu_processes_train_resume_and_agree(tmp_path):
    _launch(tmp_path)
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert ranks[0]["world"] == 2
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # DDP kept both replicas identical
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["final_step"] == 4 and result["logged"] == [1, 2, 3, 4] and result["resumed_from"] is None
    assert (Path(result["final_dir"]) / "model.safetensors").exists()
    state = tmp_path / "run" / "checkpoints" / "step_000004" / "state"
    names = {p.name for p in state.iterdir()}
    assert {f"rng_state_{i}.{ext}" for i in (0, 1) for ext in ("json", "safetensors")} <= names  # one per process
    assert not [n for n in names if n.endswith(".pkl")]  # no pickled RNG / custom state

    _launch(tmp_path)  # a restart resumes from step 4 on both processes and ends at once
    again = json.loads((tmp_path / "result.json").read_text())
    # It trains nothing; its log_fn gets the checkpoint's history once (the new run holds every step), from rank 0.
    assert again["resumed_from"] == 4 and again["final_step"] == 4 and again["logged"] == [1, 2, 3, 4]
    assert json.loads((tmp_path / "rank1.json").read_text())["checksum"] == ranks[1]["checksum"]
