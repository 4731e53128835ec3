"""Browser test: report.html opened from disk in headless Chromium loads offline and shows report.json's counts."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import urllib.parse

import pytest
from conftest import SEEDS, run_ingest
from test_report import BAD_INPUTS, RUN, STEADY, source_day, synthetic_run

from pipelines import report as rp

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
# Headline element id -> where report.json keeps the same number.
HEADLINES = {
    "count-read": ("counts", "read"),
    "count-articles": ("counts", "articles"),
    "count-rejected": ("counts", "rejected"),
    "count-duplicates": ("counts", "duplicates"),
    "count-entity-rows": ("counts", "entity_rows"),
    "count-removed-lines": ("removed_lines",),
}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"headless Chromium is required for this test but {', '.join(missing)} is missing: "
            "install the Debian packages with `apt-get install -y chromium chromium-driver` (.ci/run does)",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _pipeline_output(base):
    inputs = base / "in"
    inputs.mkdir()
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copy(seed, inputs / seed.name)
    for name, data in BAD_INPUTS.items():
        (inputs / name).write_bytes(data)
    out = base / "out"
    assert run_ingest("--input", f"{inputs}/*", "--output", out, "--run-date", RUN.isoformat()) == 0
    # Until run() writes the report itself, build it the way run() will: with the run's metrics and options.
    report = rp.build_report(str(out), RUN, metrics={"files_read": 9}, options={"input": [f"{inputs}/*"]}, wall_s=3.2)
    rp.write_report(str(out), RUN, report)
    return out, RUN


def _synthetic_output(base):
    out = base / "out"
    days = [RUN + dt.timedelta(days=k) for k in range(3)]
    for k, day in enumerate(days):
        synthetic_run(out, day, n=60 + 25 * k)
    assert rp.main([str(out), "--last", "3"]) == 0
    return out, days[-1]


def _drifting_output(base):
    """Two normal days, then one source's pages turn empty: the page must open with the drift banner."""
    out = base / "out"
    days = [RUN + dt.timedelta(days=k) for k in range(3)]
    for day in days[:2]:
        source_day(out, day, {"steady.example": STEADY, "broken.example": STEADY})
    source_day(out, days[2], {"steady.example": STEADY, "broken.example": {"articles": 1, "failures": 9}})
    assert rp.main([str(out), "--last", "3"]) == 0
    return out, days[-1]


def _network_requests(driver) -> list[tuple[str, str]]:
    """(event, url) of every request the page made or failed, from Chrome's DevTools performance log."""
    seen = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        method, params = message.get("method", ""), message.get("params", {})
        if method == "Network.requestWillBeSent":
            seen.append(("request", params["request"]["url"]))
        elif method == "Network.loadingFailed":
            seen.append(("failed", params.get("errorText", "?") + " " + params.get("requestId", "")))
    return seen


@pytest.mark.parametrize(
    "make_output", [_pipeline_output, _synthetic_output, _drifting_output], ids=["pipeline", "all-datasets", "drift"]
)
def test_report_html_in_headless_chromium(browser, make_output, tmp_path):
    out, run_date = make_output(tmp_path)
    folder = out / "reports" / f"run_date={run_date}"
    report = json.loads((folder / "report.json").read_text())
    page = (folder / "report.html").resolve()
    if make_output is _drifting_output:
        assert [d["source"] for d in report["drift"]] == ["broken.example"]  # else the banner checks test nothing
    url = page.as_uri()

    browser.get_log("performance")  # drop events of earlier pages
    browser.get(url)
    assert browser.execute_script("return document.readyState") == "complete"
    assert run_date.isoformat() in browser.title

    # No network: the only request is the file itself (a data: URI would still be a request here; there are none).
    requests = _network_requests(browser)
    assert not [r for r in requests if r[0] == "failed"], requests
    page_url = urllib.parse.unquote(url)
    others = [u for kind, u in requests if kind == "request" and urllib.parse.unquote(u) != page_url]
    assert not others, others
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [r for r in resources if not r.startswith("data:")] == []
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe

    # Every chart is drawn with a real size.
    charts = [key for key, *_ in rp.CHARTS] + (["trends"] if report["trends"] is not None else [])
    for key in charts:
        size = browser.execute_script(
            "const s = document.querySelector(arguments[0]); if (!s) return null;"
            "const r = s.getBoundingClientRect(); return [r.width, r.height];",
            f"#chart-{key} svg",
        )
        assert size is not None, f"chart {key} missing"
        assert size[0] > 100 and size[1] > 50, (key, size)

    # The headline numbers on the page are report.json's.
    for element_id, path in HEADLINES.items():
        expected = report
        for part in path:
            expected = expected[part]
        el = browser.find_element("id", element_id)
        shown = el.text.strip()
        if expected is None:
            assert el.get_attribute("data-produced") == "false" and shown == "not produced", element_id
        else:
            assert int(el.get_attribute("data-value")) == expected, element_id
            assert int(shown.replace(",", "")) == expected, (element_id, shown)
    rate = browser.find_element("id", "reject-rate")
    assert float(rate.get_attribute("data-value")) == pytest.approx(report["reject_rate"])
    assert rate.text == f"{100 * report['reject_rate']:.1f}%"

    # Each reject reason links to an example row of the sample table.
    links = browser.execute_script(
        "return [...document.querySelectorAll('#rejects-by-reason a')].map(a => a.getAttribute('href'))"
    )
    assert len(links) == sum(len(r) for r in report["counts"]["rejected_by_stage"].values())
    for href in links:
        row = browser.find_element("css selector", href)
        assert row.tag_name == "tr"
    rows = browser.find_elements("css selector", "#sample-rejects tbody tr")
    assert len(rows) == len(report["sample_rejects"]) > 0
    assert rows[0].find_elements("tag name", "td")[1].text == report["sample_rejects"][0]["input_ref"]
    if report["articles_per_source"]:
        first = browser.find_element("css selector", "#top-sources tbody tr td").text
        assert first == report["articles_per_source"][0]["source"]
        # Source names come from the data (one is "evil<script>...</script>.test"): shown as text, never markup.
        shown = browser.execute_script(
            "return [...document.querySelectorAll('#top-sources tbody tr td:first-child')].map(td => td.textContent)"
        )
        assert shown == [r["source"] for r in report["articles_per_source"][: len(shown)]]
    assert browser.execute_script("return document.querySelectorAll('script, img, iframe').length") == 0

    # Source health: one row per source of report.json, in its order, shown as text.
    health = browser.find_element("id", "source-health")
    assert int(health.get_attribute("data-rows")) == len(report["sources"]) > 0
    shown = browser.execute_script(
        "return [...document.querySelectorAll('#source-health tbody tr')].map(tr => tr.cells[0].textContent)"
    )
    assert shown == [r["source"] for r in report["sources"]]
    # Drift: a banner first thing on the page naming each flagged source, or no banner at all.
    banner = browser.find_elements("id", "drift")
    if report["drift"]:
        assert len(banner) == 1 and int(banner[0].get_attribute("data-rows")) == len(report["drift"])
        assert browser.execute_script("return document.querySelector('main').firstElementChild.id") == "drift"
        named = browser.execute_script(
            "return [...document.querySelectorAll('#drift li')].map(li => li.dataset.source)"
        )
        assert named == [d["source"] for d in report["drift"]]
        assert banner[0].is_displayed() and banner[0].location["y"] < health.location["y"]
    else:
        assert banner == []

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(max(height, 900), 8000))
    shot = tmp_path / f"report-{run_date}.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    browser.set_window_size(1280, 900)
