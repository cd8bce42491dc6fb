"""The Kedro project itself: registered pipelines, fail-fast configuration, the kedro-viz DAG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

EXPECTED_PIPELINES = {"data_curation", "teacher", "teacher_scoring", "student_init", "distill", "offline_kd", "rtap",
                      "grpo", "kl_kd", "rlad", "__default__"}


@pytest.fixture(scope="module")
def pipelines():
    from kedro.framework.project import configure_project

    from rl_distill.pipeline_registry import register_pipelines

    configure_project("rl_distill")
    return register_pipelines()


def test_every_pipeline_is_registered(pipelines) -> None:
    assert set(pipelines) >= EXPECTED_PIPELINES
    assert "tuning" not in {n.name for n in pipelines["__default__"].nodes} or True
    default_nodes = {n.name for n in pipelines["__default__"].nodes}
    for name, pipe in pipelines.items():
        if name not in ("__default__", "tuning"):
            assert {n.name for n in pipe.nodes} <= default_nodes, f"{name} is missing from __default__"
    if "tuning" in pipelines:
        assert not {n.name for n in pipelines["tuning"].nodes} & default_nodes, "tuning must stay out of __default__"


def test_distill_methods_are_namespaces_of_one_template(pipelines) -> None:
    for method in ("offline_kd", "grpo", "kl_kd", "rlad"):
        names = {n.name for n in pipelines[method].nodes}
        assert f"{method}.train" in names
        assert pipelines[method].outputs() >= {f"{method}.student_model"}
    assert "params:distill.rlad" in pipelines["rlad"].inputs()


def _write_param(project: Path, env: str, text: str) -> None:
    (project / "conf" / env).mkdir(exist_ok=True)
    (project / "conf" / env / "parameters_bad.yml").write_text(text)


def test_misspelled_parameter_key_names_key_and_file(project_factory, run_kedro) -> None:
    project = project_factory()
    path = project / "conf" / "base" / "parameters_distill.yml"
    params = yaml.safe_load(path.read_text())
    params["distill"]["rlad"]["loss"]["config"]["alpah"] = 0.3  # the typo
    path.write_text(yaml.safe_dump(params))
    result = run_kedro(project, "run", "--pipelines", "rlad", timeout=300)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "alpah" in out and "parameters_distill.yml" in out, out[-3000:]
    assert "alpha" in out  # the suggestion


def test_unknown_top_level_block_fails(project_factory, run_kedro) -> None:
    project = project_factory()
    _write_param(project, "base", "teachr: {init_from: null}\n")
    result = run_kedro(project, "run", "--pipelines", "teacher", timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "teachr" in out and "parameters_bad.yml" in out, out[-3000:]


def test_missing_catalog_entry_names_dataset_and_catalog(project_factory, run_kedro) -> None:
    project = project_factory()
    catalog = project / "conf" / "base" / "catalog.yml"
    entries = yaml.safe_load(catalog.read_text())
    del entries["rl_prompts"]
    catalog.write_text(yaml.safe_dump(entries))
    result = run_kedro(project, "run", "--pipelines", "grpo", timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "rl_prompts" in out and "catalog.yml" in out, out[-3000:]


def test_missing_teacher_checkpoint_fails_naming_path(project_factory, run_kedro) -> None:
    project = project_factory()
    teacher = project / "conf" / "base" / "parameters_teacher.yml"
    params = yaml.safe_load(teacher.read_text())
    params["teacher"]["init_from"] = "data/06_models/no_such_teacher"
    teacher.write_text(yaml.safe_dump(params))
    result = run_kedro(project, "run", "--pipelines", "teacher", timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "no_such_teacher" in out, out[-3000:]


@pytest.mark.slow
def test_viz_build_contains_every_pipeline(project_factory, run_kedro) -> None:
    project = project_factory()
    result = run_kedro(project, "viz", "build", timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    main = json.loads((project / "build" / "api" / "main").read_text())
    ids = {p["id"] for p in main["pipelines"]}
    assert ids >= EXPECTED_PIPELINES, ids
    modular = {n["name"] for n in main["nodes"] if n.get("type") == "modularPipeline"}
    assert {"rlad", "grpo", "kl_kd", "offline_kd"} <= modular, modular
