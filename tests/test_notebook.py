"""notebooks/compare_methods.ipynb: stored clean, and (slow) executed headless on the smoke run's MLflow store."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from rl_distill.known_methods import known_methods

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "compare_methods.ipynb"


def test_notebook_is_valid_and_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert "RL_DISTILL_PROJECT" in code[0].source  # the project root is configurable


@pytest.mark.slow
def test_notebook_runs_on_the_smoke_output(smoke_project: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    monkeypatch.setenv("RL_DISTILL_PROJECT", str(smoke_project))  # the kernel inherits the environment
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any cell error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, [list(o.get("data", {})) for o in outputs]  # difficulty bars, curves, lengths
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    for model in ("teacher", "student_init", *known_methods()):
        assert model in html, model
    assert "accuracy 95% CI" in html and "16.000" not in html  # the CI column; the problem count is an integer
    assert not (tmp_path / "mlruns").exists()  # read-only against the project's store
