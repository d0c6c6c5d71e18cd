"""The HTML monitoring report of a real trained model and real logged traffic, in real Chromium.

Three one-hour windows of the demo model's prediction log are reported through
the CLI (two stored as history, the last written as HTML with ``--html``); the
last one has drift injected into ``income`` and markup injected as a
``purpose`` category. Headless Chromium (Debian's ``chromium``, driven by
Playwright) opens the file: no errors, no request but the file itself, the
charts drawn, the markup shown as text and never run. A full-page screenshot
is kept as a test artifact.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Locator, Page, sync_playwright

from atoll import api
from atoll.cli.main import cli
from atoll.data.sources import read_frame
from atoll.errors import DataError
from atoll.monitor.history import Snapshot, of_report
from atoll.monitor.html import render
from atoll.monitor.report import Report
from atoll.settings import Settings
from atoll.store.predlog import record_feedback
from tests.browser import chromium
from tests.conftest import write_demo_project
from tests.monitor.conftest import log_predictions

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WINDOW_ROWS = 700
LABELLED = 400
DRIFTED = "income"
MARKUP = '</title><script>window.__pwned = 1</script><img src="x.png">'
"""A category value that would run script and fetch a file if it reached the page unescaped."""


@dataclass(frozen=True)
class Monitored:
    root: Path
    settings: Settings
    html: Path
    output: str


def _report(root: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["-C", str(root), "monitor", "report", "credit-risk", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    """A demo model, two clean stored windows, then a drifted one written as HTML."""
    root = tmp_path_factory.mktemp("html-report")
    write_demo_project(root)
    settings = Settings.from_env(project_dir=root, environ={})
    version = api.train(root / "atoll.yaml", settings=settings).version
    api.promote(f"{version.name}@{version.version}", settings=settings)
    frame = read_frame("data/applications.csv", root)
    hour = timedelta(hours=1)
    now = datetime.now(UTC)
    for k, start in enumerate((now - 3 * hour, now - 2 * hour, now - hour)):
        rows = frame.iloc[k * WINDOW_ROWS : (k + 1) * WINDOW_ROWS].reset_index(drop=True)
        inputs = rows.drop(columns=["defaulted", "email"])
        if k == 2:  # the current window: one feature drifts, one category carries markup
            inputs[DRIFTED] = inputs[DRIFTED] * 3 + 20_000
            inputs.loc[:59, "purpose"] = MARKUP
        records, _ = log_predictions(settings, version, inputs, start + hour / 2)
        labels = [
            (r.prediction_id, int(t)) for r, t in zip(records, rows["defaulted"], strict=True)
        ][:LABELLED]
        with api.open_registry(settings) as registry:
            record_feedback(registry.engine, labels, None)
        if k < 2:
            _report(root, "--since", start.isoformat(), "--until", (start + hour).isoformat())
    html = root / "out" / "report.html"
    html.parent.mkdir()
    output = _report(root, "--window", "1h", "--html", str(html))
    return Monitored(root, settings, html, output)


@dataclass(frozen=True)
class Opened:
    """A Chromium page, and what it reported while opening a file."""

    page: Page
    errors: list[str]
    requests: list[str]


@pytest.fixture
def opened(monitored: Monitored) -> Iterator[Opened]:
    """The report opened in headless Chromium, every console error and request recorded."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium())
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            seen = Opened(page, [], [])
            page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen.errors.append(str(e)))
            page.on("request", lambda r: seen.requests.append(r.url))
            page.goto(monitored.html.as_uri())
            page.wait_for_load_state("load")
            yield seen
        finally:
            browser.close()


def artifacts() -> Path:
    folder = Path(os.environ.get("ATOLL_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_report_opens_offline_with_its_charts(monitored: Monitored, opened: Opened) -> None:
    page = opened.page
    page.screenshot(path=str(artifacts() / "monitor-report.png"), full_page=True)

    assert opened.errors == []
    assert opened.requests == [monitored.html.as_uri()]  # nothing but the file itself
    assert "credit-risk@1" in page.title()
    columns = page.locator("figure[data-column] svg")
    assert columns.count() >= 12  # every input column and the prediction
    drifted = page.locator(f'figure[data-column="{DRIFTED}"]').first
    _assert_drawn(drifted.locator("svg"))
    assert drifted.locator("rect").count() >= 10  # reference and window bars per bin
    card = page.locator(".card", has=page.locator(f'figure[data-column="{DRIFTED}"]')).first
    assert card.locator(".badge").inner_text() == "alert"
    assert page.locator("svg").count() >= columns.count() + 4  # and the trends
    for trend in ("drift", "performance", "latency", "rows", "fairness"):
        _assert_drawn(page.locator(f'figure[data-trend="{trend}"] svg'))
    # three windows: the two stored and this one, each a point of the drift trend
    income = page.locator('figure[data-trend="drift"] circle', has_text=re.compile(f"^{DRIFTED}:"))
    assert income.count() == 3
    _assert_drawn(page.locator('figure[data-fairness="sex"] svg'))


def _assert_drawn(chart: Locator) -> None:
    assert chart.count() == 1
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 50


def test_markup_from_data_is_shown_as_text_and_never_runs(
    monitored: Monitored, opened: Opened
) -> None:
    page = opened.page
    assert page.evaluate("window.__pwned") is None
    assert page.locator("script, img").count() == 0
    assert MARKUP in page.locator("body").inner_text()  # in the quality table, as text
    assert opened.requests == [monitored.html.as_uri()]
    assert "<script" not in monitored.html.read_text()


def test_the_cli_reports_as_usual_and_names_the_file(monitored: Monitored) -> None:
    assert "drift by column" in monitored.output
    assert f"wrote the HTML report to {monitored.html}" in monitored.output
    assert sorted(p.name for p in monitored.html.parent.iterdir()) == ["report.html"]  # no temp


EVIL = '<b onmouseover="x()">'
"""Markup put in every string a report takes from data."""

ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section",
    "h1", "h2", "h3", "p", "span", "div", "em", "code", "i", "table", "thead", "tbody", "tr",
    "th", "td", "figure", "figcaption", "svg", "line", "text", "rect", "polyline", "circle",
}  # fmt: skip
"""Every tag the renderer writes itself."""


class Tags(HTMLParser):
    """Every start tag of a page, and the names of its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def _evil_report() -> tuple[Report, list[Snapshot]]:
    """A report, and a history, whose every name, category, metric and reason carries markup."""
    histogram = {"categories": ["<i>", EVIL, "<other>"], "reference": [0.5, 0.5, 0.0]}
    column = {"rows": 10, "status": "alert", "psi": 1.0, "kind": "categorical"}
    drift = {
        "status": "alert",
        "drifted": [EVIL],
        "warned": [],
        "columns": {
            EVIL: {**column, "histogram": {**histogram, "current": [0, 2, 8]}},
            "<s>quiet": {"rows": 3, "status": "no_data", "reason": f"too few rows {EVIL}"},
        },
        "prediction": None,
        "skipped": {"<u>": f"datetime column {EVIL}"},
    }
    quality = {
        "status": "alert",
        "columns": {
            EVIL: {
                "null_rate": 0.0,
                "reference_null_rate": 0.0,
                "unseen_values": 3,
                "unseen_categories": {EVIL: 2, "<script>": 1},
                "status": "alert",
            }
        },
        "absent_features": ["<u>absent"],
    }
    fairness = {
        "status": "alert",
        "columns": {
            EVIL: {
                "status": "alert",
                "groups": {EVIL: {"count": 50, "selection_rate": 0.5}, "<b>": {"count": 60}},
                "limits": {"demographic_parity_difference": 0.1},
                "demographic_parity_difference": 0.3,
                "flagged": ["demographic_parity_difference"],
            },
            "<em>": {"status": "no_data", "reason": f"not logged {EVIL}"},
        },
    }
    performance = {
        "status": "ok",
        "metrics": {EVIL: 0.7, "accuracy": 0.8, "r2": -0.4},
        "judged_metric": EVIL,
        "baseline": {EVIL: 0.8},
        "metric_drop": 0.1,
        "labelled_rows": 100,
    }
    checks = {
        "drift": drift,
        "quality": quality,
        "performance": performance,
        "fairness": fairness,
        "operational": {"status": "no_data", "reason": f"no latencies {EVIL}"},
    }
    start = datetime(2026, 5, 1, tzinfo=UTC)
    report = Report("m<script>", 1, "log", start, start + timedelta(hours=1), 10, checks)
    history = [
        Snapshot(1, start - timedelta(hours=1), start, start, report.to_dict()["checks"]),
        of_report(report),
    ]
    return report, history


def test_every_string_from_data_is_escaped() -> None:
    """Names of columns, groups, categories and metrics, and reasons, are text in the page."""
    report, history = _evil_report()

    page = render(report, history)

    parsed = Tags()
    parsed.feed(page)
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS
    assert not any(name.startswith("on") for name in parsed.attributes)
    assert "&lt;b onmouseover=&quot;x()&quot;&gt;" in page and "&lt;other&gt;" in page
    assert 'figure class="chart" data-fairness="&lt;b onmouseover' in page
    assert 'data-trend="performance"' in page and 'data-trend="r2"' in page


def test_an_unwritable_path_is_refused_with_its_name(monitored: Monitored, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "report.html"
    result = CliRunner().invoke(
        cli,
        ["-C", str(monitored.root), "monitor", "report", "credit-risk", "--html", str(missing)],
    )
    assert result.exit_code == 2 and "does not exist" in result.output
    result = CliRunner().invoke(
        cli,
        ["-C", str(monitored.root), "monitor", "report", "credit-risk", "--html", str(tmp_path)],
    )
    assert result.exit_code == 2 and "is a directory" in result.output

    report = api.monitor_report("credit-risk", save=False, settings=monitored.settings)
    with pytest.raises(DataError, match=r"cannot write the HTML report to .*no-such-folder"):
        api.monitor_html(report, missing, settings=monitored.settings)
    mask = os.umask(0o027)
    try:
        written = api.monitor_html(report, tmp_path / "again.html", settings=monitored.settings)
    finally:
        os.umask(mask)
    assert written.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["again.html"]
    assert stat.S_IMODE(written.stat().st_mode) == 0o640  # as any new file under that umask


def test_a_report_saved_or_not_is_drawn_once_as_the_last_window(monitored: Monitored) -> None:
    from atoll.monitor.history import snapshots
    from atoll.store.monitoring import list_results

    until = datetime.now(UTC)
    report = api.monitor_report(
        "credit-risk",
        window=timedelta(hours=1),
        until=until,
        save=False,
        settings=monitored.settings,
    )
    with api.open_registry(monitored.settings) as registry:
        stored = list_results(registry.engine, "credit-risk", version=1)
    windows = snapshots(stored, report)
    assert windows[-1].window_end == until and windows[-1].checks["drift"]["status"] == "alert"
    assert len(windows) == 4  # the two stored clean windows, the stored drifted one, this one
    assert all(w.checks["drift"]["columns"][DRIFTED]["status"] != "alert" for w in windows[:2])
