"""Tables for people show data as text: brackets from data are never read as rich markup."""

from __future__ import annotations

import pytest

from atoll.cli._render import StageReporter, table


def test_brackets_in_titles_headers_and_cells_are_shown_as_they_are(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")

    table("price[usd] [bold]report", ("price[usd]", "error"), [(1.5, "HTTP 500 [/x]")])

    out = capsys.readouterr().out
    assert "price[usd] [bold]report" in out
    assert out.count("price[usd]") == 2 and "HTTP 500 [/x]" in out


def test_stage_notes_are_shown_as_they_are(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    reporter = StageReporter()

    reporter.finished("read", 0.5, "data[2026].csv [/x]")
    reporter.failed("fit [/y]")

    err = capsys.readouterr().err
    assert "data[2026].csv [/x]" in err and "fit [/y]" in err
