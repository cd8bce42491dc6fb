"""A real pretrained LLM end to end: ``kedro run --env smollm2`` (SmolLM2-135M-Instruct teacher, a 15-layer student
pruned from it, natural-language arithmetic through the chat template) in a project copy, then checks of the prompt
ids, the old log-probs against a fresh forward pass and the decoded text of the 49k-vocabulary BPE model.

Needs the ``smollm2`` extra (``make smollm2``); skips with one line when it is absent. Installs nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
import torch

from rl_distill.models.gguf_import import SMOLLM2_DIR, MissingExtraError, import_gguf, smollm2_gguf

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("grpo", "rlad", "kl_kd")


def _weights_or_skip() -> Path | None:
    """The imported HF directory of this checkout if there is one, else None (import from the extra); skip when
    neither the directory nor the extra is available."""
    if (ROOT / SMOLLM2_DIR / "config.json").exists():
        return ROOT / SMOLLM2_DIR
    try:
        smollm2_gguf()
        import gguf  # noqa: F401
    except (MissingExtraError, ImportError):
        pytest.skip("the smollm2 extra is not installed (make smollm2)")
    return None


@pytest.fixture(scope="module")
def smollm2_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import copy_project, kedro

    weights = _weights_or_skip()
    project = copy_project(tmp_path_factory.mktemp("smollm2") / "project")
    target = project / SMOLLM2_DIR
    if weights is not None:
        target.symlink_to(weights, target_is_directory=True)
    else:
        import_gguf(smollm2_gguf(), target, "SmolLM2-135M-Instruct")
    # A real model is compute-bound: give the run every core (the suite's default is one thread per process).
    threads = str(os.cpu_count() or 1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", threads)
        patch.setenv("RL_DISTILL_TORCH_THREADS", threads)
        result = kedro(project, "run", "--env", "smollm2", timeout=2400)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    (project / "kedro_run.stdout").write_text(result.stdout)
    return project


def test_prompts_go_through_the_chat_template_with_the_format_instruction(smollm2_project: Path) -> None:
    from transformers import AutoTokenizer

    from rl_distill.models.prompt_format import DEFAULT_SYSTEM_PROMPT
    from rl_distill.rollout.base import encode_prompts

    tokenizer = AutoTokenizer.from_pretrained(smollm2_project / "data/06_models/grpo")  # what grpo trained with
    test = pl.read_parquet(smollm2_project / "data/05_model_input/test_examples.parquet")
    prompt = test["prompt"][0]
    assert prompt.startswith("What is ") and prompt.endswith("?\n")  # natural-language arithmetic
    ids, mask = encode_prompts(tokenizer, [prompt])
    head = tokenizer.encode(f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n",
                            add_special_tokens=False)
    tail = tokenizer.encode("<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
    row = ids[0][mask[0].bool()].tolist()
    assert row[:len(head)] == head and row[-len(tail):] == tail
    assert row[0] == tokenizer.convert_tokens_to_ids("<|im_start|>") and len(tokenizer) == 49152


def test_the_sampled_old_logprobs_equal_a_fresh_forward_and_replies_are_text(smollm2_project: Path) -> None:
    from rl_distill.models.factory import load_model_dir
    from rl_distill.models.scoring import sequence_logprobs
    from rl_distill.rollout.base import RolloutConfig, build_rollout_engine
    from rl_distill.tasks import get_task

    model, tokenizer = load_model_dir(smollm2_project / "data/06_models/selected_teacher")
    test = pl.read_parquet(smollm2_project / "data/05_model_input/test_examples.parquet").head(4)
    cfg = RolloutConfig(group_size=2, temperature=1.0, max_new_tokens=80)
    torch.manual_seed(0)
    batch = build_rollout_engine(cfg).generate(model, tokenizer, test["prompt"].to_list(), cfg, from_sampler=True)
    fresh = sequence_logprobs(model, batch.input_ids, batch.attention_mask, batch.response_start, chunk_size=16,
                              response_mask=batch.response_mask)
    mask = batch.response_mask.bool()
    assert mask.sum() > 50
    torch.testing.assert_close(batch.old_logprobs[mask], fresh[mask], rtol=0, atol=1e-4)
    # The teacher had a format SFT: its replies are English text in the think/answer format, decoded from BPE
    # pieces without byte-level artefacts, and some are right.
    task = get_task("arithmetic", ops=["+"], render="natural")
    assert all("Ġ" not in t and "Ċ" not in t and "\ufffd" not in t for t in batch.texts)
    assert sum("<answer>" in t and "</think>" in t for t in batch.texts) >= 4, batch.texts
    answers = [task.parse_answer(t) for t in batch.texts]
    assert sum(a is not None for a in answers) >= 4, batch.texts


def test_every_method_trained_and_was_evaluated_against_the_real_teacher(smollm2_project: Path) -> None:
    import mlflow

    summary = pl.read_csv(smollm2_project / "data/08_reporting/eval_summary.csv")
    models = set(summary["model"])
    assert {"teacher", "student_init", *METHODS} <= models, models
    mlflow.set_tracking_uri(f"sqlite:///{smollm2_project / 'mlruns' / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(experiment_names=["rl-distill"], output_format="pandas")
    finally:
        mlflow.set_tracking_uri(None)
    by_name = {name: runs[runs["tags.mlflow.runName"] == name] for name in ("teacher", *METHODS)}
    for name, frame in by_name.items():
        assert len(frame) == 1, name
        assert frame["metrics.time/step_s"].notna().all(), name
    # Training changed something: the teacher's format SFT moved the real model's weights.
    from safetensors.torch import load_file

    base = load_file(str(smollm2_project / SMOLLM2_DIR / "model.safetensors"))
    tuned = load_file(str(smollm2_project / "data/06_models/selected_teacher/model.safetensors"))
    shared = [k for k in base if k in tuned]
    assert shared and any(not torch.equal(base[k], tuned[k]) for k in shared)
    provenance = json.loads((smollm2_project / SMOLLM2_DIR / "provenance.json").read_text())
    assert provenance["parameters"] == 134_515_008 and provenance["vocab_size"] == 49152
