"""Screenshots of the MLflow UI a run leaves behind, taken in a real headless browser, with checks of what it shows.

    python bench/mlflow_ui_screenshots.py [--project .] [--out data/08_reporting/mlflow_ui]

Serves the project's store (``mlruns/mlflow.db``, as ``make ui`` does) on a free port, then loads two pages in
headless Chromium (``apt-get install chromium``), each as a PNG plus its rendered DOM:

- ``runs_table.png``: the comparison link the end-of-run summary prints (``MLflow comparison: ...``): the
  ``rl-distill`` experiment in the model-training view, one row per evaluated model, with the test accuracy, its CI
  bounds, the response tokens, the method / seed / alpha tags and the logged model;
- ``compare.png``: MLflow's Compare view of the newest ``grpo``, ``kl_kd`` and ``rlad`` runs.

It fails (exit 1) when a page does not render what it should: the runs table must name every evaluated run and the
``eval/accuracy`` column, and the Compare view the three runs. Run it after ``kedro run`` (or ``--env smoke``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow

from rl_distill.tracking.runs import comparison_view_url

COMPARED = ("grpo", "kl_kd", "rlad")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(store: Path, port: int, timeout: float = 120) -> Iterator[None]:
    """``mlflow server`` on ``store`` at 127.0.0.1:``port`` until the block ends."""
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1", "--backend-store-uri", f"sqlite:///{store}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"mlflow server on {store} did not start") from None
                time.sleep(0.5)
        yield
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def shoot(browser: str, url: str, png: Path, width: int, height: int) -> str:
    """Render ``url`` (20 s of virtual time for the UI's requests), write ``png``; return the rendered DOM."""
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--window-size={width},{height}", "--virtual-time-budget=20000"]
    subprocess.run([*common, f"--screenshot={png}", url], check=True, capture_output=True, timeout=180)
    return subprocess.run([*common, "--dump-dom", url], check=True, capture_output=True, text=True,
                          timeout=180).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--out", type=Path, default=None, help="default: <project>/data/08_reporting/mlflow_ui")
    args = parser.parse_args()
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        raise SystemExit("no headless browser found (tried chromium, chromium-browser, google-chrome): "
                         "install one, e.g. `apt-get install chromium`")
    store = (args.project / "mlruns" / "mlflow.db").resolve()
    if not store.exists():
        raise SystemExit(f"{store} does not exist: run `kedro run` (or `kedro run --env smoke`) first")
    out = args.out or args.project / "data" / "08_reporting" / "mlflow_ui"
    out.mkdir(parents=True, exist_ok=True)

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("rl-distill")
    evaluated = client.search_runs([experiment.experiment_id], 'metrics."eval/accuracy" >= 0')
    latest = {}
    for run in sorted(evaluated, key=lambda r: r.info.start_time):
        latest[run.info.run_name] = run.info.run_id
    missing = [m for m in COMPARED if m not in latest]
    if missing:
        raise SystemExit(f"no evaluated run of {missing} in {store}: run the default `kedro run` first")

    port = _free_port()
    failures = []
    with mlflow_server(store, port):
        table_url = comparison_view_url(experiment.experiment_id, "127.0.0.1", port)
        dom = shoot(browser, table_url, out / "runs_table.png", 2000, 900)
        absent = [name for name in ["eval/accuracy", "eval/response_tokens", *latest] if name not in dom]
        if absent:
            failures.append(f"runs table ({table_url}) does not show {absent}")
        ids = [latest[m] for m in COMPARED]
        compare_url = (f"http://127.0.0.1:{port}/#/compare-runs?runs={urllib.parse.quote(json.dumps(ids))}"
                       f"&experiments={urllib.parse.quote(json.dumps([experiment.experiment_id]))}")
        dom = shoot(browser, compare_url, out / "compare.png", 2000, 1400)
        absent = [run_id for run_id in ids if run_id not in dom]
        if "Comparing 3 Runs" not in dom or absent:
            failures.append(f"Compare view ({compare_url}) does not show the runs {absent or ids}")
    for failure in failures:
        print(f"FAIL: {failure}")
    print(f"screenshots: {out / 'runs_table.png'}, {out / 'compare.png'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
