"""The Kedro project itself: registered pipelines, fail-fast configuration, the kedro-viz DAG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rl_distill.known_methods import distill_methods, known_methods

EXPECTED_PIPELINES = {"data_curation", "teacher", "given_teacher", "teacher_scoring", "student_init", "distill", "rtap",
                      "evaluation", "reporting", "tuning", "benchmark", "__default__", *known_methods()}


@pytest.fixture(scope="module")
def pipelines():
    from kedro.framework.project import configure_project

    from rl_distill.pipeline_registry import register_pipelines

    configure_project("rl_distill")
    return register_pipelines()


def test_every_pipeline_is_registered(pipelines) -> None:
    assert set(pipelines) == EXPECTED_PIPELINES
    default_nodes = {n.name for n in pipelines["__default__"].nodes}
    for name, pipe in pipelines.items():
        if name not in ("__default__", "tuning", "benchmark", "teacher"):
            assert {n.name for n in pipe.nodes} <= default_nodes, f"{name} is missing from __default__"
    assert pipelines["teacher"].outputs() == pipelines["given_teacher"].outputs() == {"teacher_model"}
    for extra in ("tuning", "benchmark", "teacher"):
        assert pipelines[extra].nodes and not {n.name for n in pipelines[extra].nodes} & default_nodes, \
            f"{extra} must stay out of __default__"


def test_distill_methods_are_namespaces_of_one_template(pipelines) -> None:
    assert set(distill_methods()) >= {"offline_kd", "grpo", "kl_kd", "rlad", "opd"}
    for method in distill_methods():
        names = {n.name for n in pipelines[method].nodes}
        assert f"{method}.train" in names
        assert pipelines[method].outputs() >= {f"{method}.student_model"}
    assert "params:distill.rlad" in pipelines["rlad"].inputs()
    # the tuning study's record flows through the catalog: kedro-viz shows the tuning -> rlad edge
    assert "best_rlad_params" in pipelines["rlad"].inputs() and "best_rlad_params" in pipelines["tuning"].outputs()


def _write_param(project: Path, env: str, text: str) -> None:
    (project / "conf" / env).mkdir(exist_ok=True)
    (project / "conf" / env / "parameters_bad.yml").write_text(text)


@pytest.mark.slow  # a `kedro` subprocess
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


@pytest.mark.slow  # a `kedro` subprocess
def test_unknown_top_level_block_fails(project_factory, run_kedro) -> None:
    project = project_factory()
    _write_param(project, "base", "teachr: {init_from: null}\n")
    result = run_kedro(project, "run", "--pipelines", "teacher", timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "teachr" in out and "parameters_bad.yml" in out, out[-3000:]


@pytest.mark.slow  # a `kedro` subprocess
def test_missing_catalog_entry_names_dataset_and_catalog(project_factory, run_kedro) -> None:
    project = project_factory()
    catalog = project / "conf" / "base" / "catalog.yml"
    entries = yaml.safe_load(catalog.read_text())
    del entries["rl_prompts"]
    catalog.write_text(yaml.safe_dump(entries))
    result = run_kedro(project, "run", "--pipelines", "grpo", timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "rl_prompts" in out and "catalog.yml" in out, out[-3000:]


@pytest.mark.slow  # a `kedro` subprocess
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
    assert set(distill_methods()) <= modular, modular


def _loaded_params(project: Path, runtime_params: dict | None = None) -> dict:
    from kedro.config import OmegaConfigLoader

    from rl_distill.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(project / "conf"), env="local", runtime_params=runtime_params,
                               **CONFIG_LOADER_ARGS)
    return loader["parameters"]


def test_one_key_local_override_merges_into_base(project_factory) -> None:
    from rl_distill.parameters import validate_parameters
    from rl_distill.pipelines.distill.nodes import method_plan

    project = project_factory()
    base = _loaded_params(project)
    (project / "conf" / "local" / "parameters_distill.yml").write_text(
        "distill: {rlad: {loss: {config: {alpha: 0.7}}}}\n")
    merged = _loaded_params(project)
    assert merged["distill"]["rlad"]["loss"]["config"]["alpha"] == 0.7
    # everything else is base's, key by key
    assert merged["distill"]["common"] == base["distill"]["common"]
    assert {k: v for k, v in merged["distill"]["rlad"]["loss"]["config"].items() if k != "alpha"} == \
        {k: v for k, v in base["distill"]["rlad"]["loss"]["config"].items() if k != "alpha"}
    assert set(merged["distill"]) == set(base["distill"])
    validate_parameters(merged, lambda key: key)
    plan = method_plan("rlad", merged["distill"]["common"], merged["distill"]["rlad"])
    assert plan.train.loss.config["alpha"] == 0.7 and plan.train.total_steps == base["distill"]["common"]["total_steps"]
    # --params (runtime parameters) override one key the same way
    runtime = _loaded_params(project, {"distill": {"rlad": {"loss": {"config": {"alpha": 0.6}}}}})  # as --params
    assert runtime["distill"]["rlad"]["loss"]["config"]["alpha"] == 0.6
    assert runtime["distill"]["common"] == base["distill"]["common"]


def test_parameters_are_parsed_once_and_nodes_get_the_typed_configs(project_factory) -> None:
    from rl_distill.engine.method_params import MethodPlan
    from rl_distill.hooks import ConfigValidationHooks
    from rl_distill.parameters import validate_parameters
    from rl_distill.pipelines.evaluation.config import EvaluationParams

    typed = validate_parameters(_loaded_params(project_factory()), lambda key: key)
    plans = {name: cfg for name, cfg in typed.items() if name.startswith("params:distill.")}
    assert set(plans) == {f"params:distill.{m}" for m in distill_methods()}
    assert all(isinstance(p, MethodPlan) for p in plans.values())
    assert plans["params:distill.rlad"].train.loss.typed.alpha == plans["params:distill.rlad"].raw_train["loss"][
        "config"]["alpha"]
    assert isinstance(typed["params:evaluation"], EvaluationParams)

    hooks = ConfigValidationHooks()
    hooks._typed = typed
    raw = {"params:distill.rlad": {"loss": {}}, "params:distill.common": {}, "rl_prompts": object()}
    injected = hooks.before_node_run(node=None, catalog=None, inputs=raw)
    assert injected == {"params:distill.rlad": typed["params:distill.rlad"]}  # datasets and untyped params untouched


def test_every_requested_package_extra_exists() -> None:
    """pip only warns about an unknown extra (``kedro-datasets[matplotlib-matplotlibwriter]`` did, on every install)
    and installs nothing for it: each extra the project asks for must be one its distribution provides."""
    import importlib.metadata as metadata

    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for req in requirements:
        if not req.extras:
            continue
        provided = set(metadata.distribution(req.name).metadata.get_all("Provides-Extra") or [])
        assert req.extras <= provided, (req.name, sorted(req.extras - provided))


@pytest.mark.parametrize("env", sorted(p.name for p in (Path(__file__).resolve().parents[1] / "conf").iterdir()
                                       if p.is_dir() and any(p.glob("parameters*.yml"))))
def test_every_shipped_environment_validates(env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each ``conf/<env>`` laid over base is a valid configuration once the model directories it names exist (a
    missing one fails at load, naming it: tests/models/test_factory.py)."""
    from kedro.config import OmegaConfigLoader

    from rl_distill.parameters import validate_parameters
    from rl_distill.pipeline_registry import register_pipelines
    from rl_distill.settings import CONFIG_LOADER_ARGS

    register_pipelines()  # the pipeline packages register their parameter blocks
    conf = Path(__file__).resolve().parents[1] / "conf"
    params = OmegaConfigLoader(conf_source=str(conf), env=env, **CONFIG_LOADER_ARGS)["parameters"]
    monkeypatch.chdir(tmp_path)  # the data/06_models/... directories the GPU and SmolLM2 environments name
    (tmp_path / "models").symlink_to(conf.parent / "models", target_is_directory=True)  # the shipped teacher
    for model in ("smollm2_135m_instruct", "qwen3_0.6b", "qwen3_8b"):
        (tmp_path / "data" / "06_models" / model).mkdir(parents=True)
        for name in ("config.json", "model.safetensors"):  # what an init_from directory is checked for
            (tmp_path / "data" / "06_models" / model / name).write_text("{}")
    typed = validate_parameters(params, lambda key: f"conf/{env}")
    assert "params:distill.rlad" in typed
