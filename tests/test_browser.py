"""The MLflow UI as a person sees it: headless Chromium on the runs page of a store with two kinds.

Needs Debian's chromium (/usr/bin/chromium, installed by .ci/run) and Playwright for Python; skipped
with a reason where either is missing. Leaves a screenshot in test-artifacts/mlflow_runs.png.
"""

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from pipeline import REPO_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = REPO_ROOT / "test-artifacts" / "mlflow_runs.png"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui(two_kind_store):
    if not shutil.which("chromium") and not shutil.os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium not installed (.ci/run installs it)")
    pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri",
                               f"sqlite:///{two_kind_store['tmp']}/mlflow.db", "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            time.sleep(1)
    else:
        server.kill()
        pytest.fail("mlflow ui did not start within 90 s")
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_runs_page_shows_both_kinds_and_their_gold_report_macro_f1(ui, two_kind_store):
    import mlflow
    from playwright.sync_api import sync_playwright

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{two_kind_store['tmp']}/mlflow.db")
    experiment = client.get_experiment_by_name("headline-topics")
    expected = {}
    for result in two_kind_store["results"].values():
        run = client.get_run(result.model.info["mlflow_run_id"])
        expected[run.info.run_name] = run.data.metrics["gold_report_macro_f1"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 2200, "height": 900})  # wide: metric columns on screen
        page.goto(f"{ui}/#/experiments/{experiment.experiment_id}/runs")
        for name in expected:
            page.get_by_text(name).first.wait_for(timeout=60_000)
        # show the gold_report_macro_f1 column, as a person would: Columns -> search -> tick it
        page.get_by_text("Columns", exact=True).first.click()
        page.keyboard.type("gold_report_macro_f1")
        # exact text: the _lo/_hi interval columns match the search too
        page.locator("label, span, div").filter(has_text=re.compile(r"^gold_report_macro_f1$")).last.click()
        page.keyboard.press("Escape")
        page.wait_for_timeout(1500)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        text = page.inner_text("body")
        browser.close()
    for name, value in expected.items():
        shown = repr(value).removesuffix(".0")  # the UI prints numbers as JavaScript does: 1, 0.9488711829048837
        assert name in text
        assert shown in text, f"gold_report_macro_f1 {shown} of {name} not on the page"
