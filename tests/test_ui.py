"""What users see: after a real sweep, `make ui`'s server and links show the ladder in the MLflow
UI — checked in headless Chromium, from the rendered page. Screenshots land in the test's folder
(or in $SCALELAB_SCREENSHOTS); SCALELAB_UI_DATASET=fashion_mnist makes the README's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import free_port, run, run_env, wait_for_http

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright cannot download browsers here
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SIZES = ("xs", "s", "m")


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("SCALELAB_REQUIRE_DATASETS") == "1":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt install chromium)")
    pytest.importorskip("playwright", reason="pip install playwright (no browser download needed)")
    return CHROMIUM


def start_ui(project: Path) -> tuple[subprocess.Popen, str, str]:
    """`python -m scalelab.tracking.ui PORT` (what `make ui` runs); return it and its two links."""
    cmd = ["python", "-m", "scalelab.tracking.ui", str(free_port())]
    ui = subprocess.Popen(
        cmd, cwd=project, env=run_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    links: dict[str, str] = {}
    assert ui.stdout is not None
    for line in ui.stdout:
        if match := re.match(r"\s+(runs|compare):\s+(\S+)", line):
            links[match[1]] = match[2]
        if len(links) == 2 or ui.poll() is not None:
            break
    assert set(links) == {"runs", "compare"}, "make ui prints both links"
    base = links["runs"].split("/#/")[0]
    try:
        wait_for_http(ui, f"{base}/health", "the MLflow UI server", timeout=90)
    except BaseException:
        os.killpg(ui.pid, signal.SIGKILL)
        raise
    return ui, links["runs"], links["compare"]


def test_the_ui_shows_the_sweep_the_ladder_columns_and_the_compare_view(
    project: Path, chromium: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    dataset = os.environ.get("SCALELAB_UI_DATASET", "digits")
    data = [f"data={dataset}"]
    run(["python", "-m", "pipelines.prepare", *data], project)
    sweep = [
        f"model.size={','.join(SIZES)}",
        "trainer.max_epochs=3",
        "trainer.progress_bar=false",
        "sweep.bootstrap=20",
    ]
    run(["python", "-m", "pipelines.train", "-m", *data, *sweep], project)

    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name(f"{dataset}-mlp")
    children = {
        r.info.run_name: r
        for r in client.search_runs([experiment.experiment_id])
        if r.info.run_name != "ladder"
    }
    assert sorted(children) == sorted(f"mlp-{s}-s0" for s in SIZES)

    shots = Path(os.environ.get("SCALELAB_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    ui, runs_url, compare_url = start_ui(project)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), args=FLAGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            expect.set_options(timeout=30_000)

            # The runs table: the sweep's parent, its children beneath it, the ladder's columns.
            page.goto(runs_url)
            expect(page.get_by_role("link", name="ladder")).to_be_visible()
            if page.get_by_role("button", name="Close").count():  # the Assistant panel hides columns
                page.get_by_role("button", name="Close").click()
            page.locator('[data-component-id*="runnamecellrenderer"]').first.click()  # expand the parent
            for name in children:
                expect(page.get_by_role("link", name=name)).to_be_visible()
            page.locator('[data-testid="column-selection-dropdown"]').first.click()
            columns = page.get_by_role("dialog")
            for metric in ("model/params", "test/acc"):
                columns.get_by_placeholder("Search columns").fill(metric)
                columns.locator(".du-bois-light-tree-title").filter(
                    has_text=re.compile(f"^{metric}$")
                ).click()
            page.keyboard.press("Escape")
            header = page.get_by_role("row").filter(has_text="model/params")
            expect(header).to_contain_text("test/acc")
            for name, child in children.items():
                row = page.locator(f'[role="row"][row-id="{child.info.run_id}"]')
                expect(row.first).to_contain_text(name)
                values = " ".join(row.all_inner_texts())
                assert f"{child.data.metrics['model/params']:.0f}" in values.split(), (name, values)
                assert repr(child.data.metrics["test/acc"]) in values.split(), (name, values)
            page.screenshot(path=shots / "mlflow_runs.png")

            # The compare view of the children: their names and their metrics, as stored.
            page.goto(compare_url)
            expect(page.get_by_text(f"Comparing {len(children)} Runs")).to_be_visible()
            for name in children:
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
            text = page.inner_text("body")
            metrics_table = text[text.rfind("Metrics") :].split()
            assert {"model/params", "test/acc"} <= set(metrics_table)
            for child in children.values():
                assert f"{child.data.metrics['model/params']:.0f}" in metrics_table
                assert f"{round(child.data.metrics['test/acc'], 3):g}" in metrics_table
            page.screenshot(path=shots / "mlflow_compare.png", full_page=True)
            browser.close()
    finally:
        os.killpg(ui.pid, signal.SIGKILL)
        ui.wait()
    assert (shots / "mlflow_runs.png").stat().st_size > 10_000
