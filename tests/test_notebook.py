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


@pytest.mark.slow
def test_kedro_jupyter_notebook_serves_the_notebook_with_the_project_kernel(project_factory, tmp_path: Path) -> None:
    """The dev extra's Jupyter front end: `kedro jupyter notebook` starts, installs the project's kernel (the
    default), serves notebooks/compare_methods.ipynb, and that kernel starts."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    project = project_factory()
    (project / "notebooks").mkdir()
    (project / "notebooks" / NOTEBOOK.name).write_bytes(NOTEBOOK.read_bytes())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}  # the kernel spec goes to tmp, not ~/.local
    cmd = [str(Path(sys.executable).with_name("kedro")), "jupyter", "notebook", "--no-browser", "--allow-root",
           f"--port={port}", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=t0ken"]
    server = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)

    def api(path: str, data: bytes | None = None) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/{path}", data=data,
                                         headers={"Authorization": "token t0ken"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                specs = api("kernelspecs")
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()[-3000:]
                assert time.monotonic() < deadline, "the Jupyter server did not answer within 120 s"
                time.sleep(1)
        assert specs["default"] == "kedro_rl_distill" and "kedro_rl_distill" in specs["kernelspecs"]
        notebook = api("contents/notebooks/compare_methods.ipynb")
        assert notebook["type"] == "notebook" and notebook["content"]["cells"]
        kernel = api("kernels", data=json.dumps({"name": "kedro_rl_distill"}).encode())
        assert kernel["name"] == "kedro_rl_distill" and kernel["execution_state"] in ("starting", "idle")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
