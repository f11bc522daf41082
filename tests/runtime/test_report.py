"""history.png and report.html, opened in a real headless browser (Chromium from the
system's packages, driven by Playwright: `make test` installs both): the page loads with
no request beyond itself and no error, and shows the curves and the diagram. The
screenshot is kept in the run folder (report.png) for a person to look at."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from transpiler.templates.ktrans_runtime.report import (
    curve_keys,
    plot_history,
    render_html,
    write_report,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    _, _, run = tiny_run
    copy = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(run, copy)
    write_report(copy)
    return copy


def test_curve_keys_pair_training_and_validation():
    history = {
        "epoch": [0, 1],
        "loss": [1.0, 0.5],
        "val_loss": [1.1, 0.6],
        "precision": [[0.1, 0.2], [0.3, 0.4]],
        "accuracy": [0.5, 0.7],
        "learning_rate": [0.1, 0.1],
    }
    assert curve_keys(history) == ["loss", "accuracy"]


def test_history_png_is_written(tmp_path):
    path = plot_history({"epoch": [0, 1, 2], "loss": [3.0, 2.0, 1.5]}, tmp_path / "h.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_history({"epoch": []}, tmp_path / "none.png") is None


def test_report_holds_everything_and_no_external_resource(report):
    page = (report / "report.html").read_text()
    assert (report / "history.png").is_file()
    assert 'id="curves" alt="training curves" src="data:image/png;base64,' in page
    assert 'id="diagram" alt="model diagram" src="data:image/svg+xml;base64,' in page
    assert "<pre>Model: &quot;Tiny&quot;" in page  # the summary table
    results = json.loads((report / "results.json").read_text())
    assert f"{results['test']['accuracy']:.4f}" in page
    assert "categorical_crossentropy" in page and "in training steps" in page
    for attribute in ("src=", "href="):
        for value in page.split(attribute)[1:]:
            assert value.startswith('"data:'), value[:60]
    assert "<script" not in page and "<link" not in page and "url(" not in page


def test_names_from_the_data_are_escaped(report, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(report, run)
    (run / "data.json").write_text(
        json.dumps({"kind": "csv", "path": "<script>x</script>.csv", "skipped": [["<b>", "x"]]})
    )
    page = render_html(run)
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;.csv" in page
    assert "&lt;b&gt;" in page


def test_report_in_a_headless_browser(report):
    assert CHROMIUM, "Chromium is missing: apt-get install chromium (make test installs it)"
    from playwright import sync_api as playwright  # the dev extra; never a browser download

    url = (report / "report.html").as_uri()
    requests, failures, errors = [], [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failures.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, wait_until="load")
            images = page.evaluate(
                "[...document.images].map(i => [i.id, i.complete, i.naturalWidth,"
                " i.naturalHeight, i.getBoundingClientRect().width])"
            )
            headings = page.evaluate("[...document.querySelectorAll('h2')].map(h => h.textContent)")
            page.screenshot(path=str(report / "report.png"), full_page=True)
        finally:
            browser.close()
    assert [r for r in requests if not r.startswith("data:")] == [url]
    assert failures == [] and errors == []
    shown = {i[0]: i for i in images}
    for name in ("curves", "diagram"):
        _, complete, width, height, on_page = shown[name]
        assert complete and width > 100 and height > 100 and on_page > 100, shown[name]
    assert headings[:2] == ["Training curves", "Metrics"] and "Model" in headings
    assert Path(report / "report.png").stat().st_size > 10_000


def test_settings_show_the_split_used_and_plain_integers(report, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(report, run)
    fit = json.loads(next(run.glob("*.eval.json")).read_text())["fit"]
    assert fit["validation_split"] == 0.2  # the train block's
    row = '<tr><th>{}</th><td class="num">{}</td></tr>'
    page = render_html(run)  # .npz data: the train block's split is the one used
    assert row.format("validation_split", "0.2000") in page
    settings = {"image_size": [8, 8], "validation_split": 0.25, "seed": 1337}
    (run / "data.json").write_text(
        json.dumps({"kind": "images", "path": "digits", "settings": settings})
    )
    page = render_html(run)  # an image folder: the data section's split, and only it
    assert row.format("data: validation_split", "0.2500") in page
    assert "<th>validation_split</th>" not in page
    assert row.format("data: seed", "1337") in page and "1,337" not in page
