"""The MLflow UI as a person sees it: headless Chromium on the experiment of a store with two kinds.

Needs Debian's chromium (/usr/bin/chromium, installed by .ci/run) and Playwright for Python; skipped
with a reason where either is missing. Leaves screenshots in test-artifacts/ (mlflow_runs.png, mlflow_charts.png).
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
CHARTS_SCREENSHOT = REPO_ROOT / "test-artifacts" / "mlflow_charts.png"
SECTION_HEADER = "[data-testid=experiment-view-compare-runs-section-header]"
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


def runs_of(two_kind_store) -> tuple[object, list]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{two_kind_store['tmp']}/mlflow.db")
    experiment = client.get_experiment_by_name("headline-topics")
    return experiment, [client.get_run(r.model.info["mlflow_run_id"]) for r in two_kind_store["results"].values()]


def test_the_experiment_opens_on_its_training_runs(ui, two_kind_store):
    """The link the project gives (`make ui` prints it) opens the experiment on its training runs, not on
    MLflow 3's GenAI traces overview; the experiment is tagged a model-training one."""
    from playwright.sync_api import sync_playwright

    from pipeline.tracking import runs_url

    experiment, runs = runs_of(two_kind_store)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(runs_url(experiment.experiment_id, ui))
        for run in runs:
            page.get_by_text(run.info.run_name).first.wait_for(timeout=60_000)
        page.get_by_text(re.compile(r"^2 matching runs$")).first.wait_for(timeout=30_000)
        url, text = page.url, page.inner_text("body")
        browser.close()
    assert "/runs" in url and "/overview" not in url and "workflowType=machine_learning" in url
    assert "Tokens per Trace" not in text and "Usage" not in text.split()  # the GenAI overview's panels


def test_chart_view_has_a_section_per_metric_prefix(ui, two_kind_store):
    """The runs' chart view, as a person switches to it, comes in the metric sections (report first among
    what they look for), every gold file in one section and every source in another, not one per file."""
    from playwright.sync_api import sync_playwright

    from pipeline.tracking import runs_url

    experiment, runs = runs_of(two_kind_store)
    logged = {name for run in runs for name in run.data.metrics}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(runs_url(experiment.experiment_id, ui))
        page.get_by_text(runs[0].info.run_name).first.wait_for(timeout=60_000)
        # the "Chart view" button of the Table / Chart switch (its radio input is hidden under the icon)
        page.locator("label:has(input[name=runs-view-mode][value=CHART])").first.click()
        page.locator(SECTION_HEADER).first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        CHARTS_SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(CHARTS_SCREENSHOT))
        headers = page.locator(SECTION_HEADER).all_inner_texts()
        browser.close()
    shown = {}
    for header in headers:  # "report\n(37)\nAdd chart"
        found = re.match(r"\s*(.+?)\s*\((\d+)\)", header.replace("\n", " "))
        assert found, header
        shown[found[1]] = int(found[2])
    sections = {name.rpartition("/")[0] for name in logged}
    assert {"report", "tune", "val", "gold_file", "gold_source", "calibration", "time"} <= set(shown)
    assert {s: shown[s] for s in sections} == {s: sum(n.rpartition("/")[0] == s for n in logged) for s in sections}
    assert not any(name.startswith(("gold_file/", "gold_source/")) for name in shown)  # no section per file
    assert shown.get("Model metrics", 0) == 0  # nothing left outside a section


def test_runs_page_shows_both_kinds_and_their_report_macro_f1(ui, two_kind_store):
    from playwright.sync_api import sync_playwright

    from pipeline.tracking import runs_url

    experiment, runs = runs_of(two_kind_store)
    expected = {run.info.run_name: run.data.metrics["report/macro_f1"] for run in runs}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 2200, "height": 900})  # wide: metric columns on screen
        page.goto(runs_url(experiment.experiment_id, ui))
        for name in expected:
            page.get_by_text(name).first.wait_for(timeout=60_000)
        # show the report/macro_f1 column, as a person would: Columns -> search -> tick it
        page.get_by_text("Columns", exact=True).first.click()
        page.keyboard.type("report/macro_f1")
        # exact text: the _lo/_hi interval columns match the search too
        page.locator("label, span, div").filter(has_text=re.compile(r"^report/macro_f1$")).last.click()
        page.keyboard.press("Escape")
        page.wait_for_timeout(1500)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        text = page.inner_text("body")
        browser.close()
    for name, value in expected.items():
        shown = repr(value).removesuffix(".0")  # the UI prints numbers as JavaScript does: 1, 0.9488711829048837
        assert name in text
        assert shown in text, f"report/macro_f1 {shown} of {name} not on the page"
