"""The Python twins of ``atoll monitor``: report, HTML report, check (alerts) and alert history.

Private: :mod:`atoll.api` re-exports these functions, the one public face.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from atoll._api_base import open_registry, settings_or_project
from atoll._extras import MONITORING, require
from atoll.errors import DataError
from atoll.spec import SPEC_FILE, load_project_options
from atoll.types import ModelRef

if TYPE_CHECKING:
    from atoll.monitor.alerting import CheckOutcome
    from atoll.monitor.report import Report
    from atoll.settings import Settings
    from atoll.store.alerts import AlertEvent

HTML_WINDOWS = 30
"""Windows of stored history the HTML report draws."""

CHECK_WINDOW = timedelta(hours=24)
"""The window ``monitor_check`` reads when given none of window, since and until."""

DEFAULT_ALIAS = "production"
"""What a bare model name means to ``monitor report`` and ``monitor check``."""


def monitor_report(
    model: ModelRef | str,
    *,
    window: timedelta | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    data: Path | str | None = None,
    version: int | None = None,
    save: bool = True,
    settings: Settings | None = None,
) -> Report:
    """Check a window of a version's traffic (or a data file) against its reference profile.

    Drift, data quality, performance (once feedback labels exist), fairness
    and operational health are computed in bounded memory; each check's result
    is stored (``save``) so history can be read without recomputing.

    Args:
        model: ``name``, ``name@alias`` or ``name@3``: the version whose
            reference profile the window is judged against (and whose log rows are read).
        window: the span to read, ending at ``until`` (default: now), or
            starting at ``since`` when only that is given.
        since: the first moment of the window (timezone-aware).
        until: the end of the window, exclusive (timezone-aware).
        data: read this CSV or Parquet file (or glob) instead of the log; it
            has no time window, so it takes none of ``window``, ``since`` and
            ``until``. Its rows are validated against the model's schema as
            serving validates them; rows that fail are counted as rejected.
        version: a version number, overriding the one ``model`` names.
        save: store each check's result in the database.
        settings: where the registry lives.

    Raises:
        DataError: an inconsistent window (all three of window, since and
            until; naive datetimes; an end before the start; a window with ``data``).
        NotFoundError: the model reference does not resolve.
        PackageError: the version has no reference profile.
    """
    require(*MONITORING)  # before the imports below, which need it
    from atoll.monitor.run import Window, run_report

    settings = settings_or_project(settings)
    ref = _ref(model)
    if version is not None:
        ref = ModelRef(ref.name, version=version)
    if data is not None and (window is not None or since is not None or until is not None):
        raise DataError("a data file has no time window: give data, or window/since/until")
    span = _monitor_window(window, since, until)
    spec = load_project_options(settings.project_dir / SPEC_FILE).monitor
    target = Window(span[0], span[1], Path(data) if data is not None else None)
    with open_registry(settings) as registry:
        return run_report(registry, ref, target, spec, save=save)


def _ref(model: ModelRef | str) -> ModelRef:
    return ModelRef.parse(model) if isinstance(model, str) else model


def _monitor_window(
    window: timedelta | None, since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    if any(m is not None and m.tzinfo is None for m in (since, until)):
        raise DataError("since and until must be timezone-aware datetimes")
    if window is not None:
        if window <= timedelta(0):
            raise DataError(f"the window must be positive, not {window}")
        if since is not None and until is not None:
            raise DataError("give at most two of window, since and until")
        if since is not None:
            until = since + window
        else:
            until = until or datetime.now(UTC)
            since = until - window
    if since is not None and until is not None and until <= since:
        raise DataError(
            f"the window ends ({until.isoformat()}) before it starts ({since.isoformat()})"
        )
    return since, until


def monitor_html(
    report: Report,
    path: Path | str,
    *,
    windows: int = HTML_WINDOWS,
    settings: Settings | None = None,
) -> Path:
    """Write ``report`` as a self-contained HTML page, with its version's stored history.

    The page has no script and loads nothing (inline CSS and SVG charts): it
    opens offline in any browser. The trends are drawn from the results stored
    for the same version and windows of the same length as the report's (the
    last ``windows`` of them, ``report`` last, whether it was saved or not); a
    report of a data file or of the whole log has none. The file is written to
    a temporary name beside ``path`` and renamed over it: whole or not at all,
    with the permissions any new file gets under the umask.

    Returns:
        the path written.

    Raises:
        DataError: ``path`` cannot be written (a missing folder, a directory, no permission).
    """
    require(*MONITORING)
    from atoll.monitor.history import window_history
    from atoll.monitor.html import render

    settings = settings_or_project(settings)
    spec = load_project_options(settings.project_dir / SPEC_FILE).monitor
    with open_registry(settings) as registry:
        history = window_history(registry.engine, report, windows)
    page = render(report, history, spec)
    target = Path(path)
    try:
        _write_atomic(target, page)
    except OSError as exc:
        raise DataError(
            f"cannot write the HTML report to {target}: {exc.strerror or exc}", path=str(target)
        ) from exc
    return target


def _write_atomic(target: Path, text: str) -> None:
    """Write to a new file in ``target``'s folder, then rename it over ``target``.

    The file is created with mode 0666, which the umask narrows as for any
    new file (a private temporary file would leave the report unreadable to
    the group and others the umask lets in).
    """
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        temporary.replace(target)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def monitor_check(
    model: ModelRef | str,
    *,
    window: timedelta | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    settings: Settings | None = None,
) -> CheckOutcome:
    """Report on a window of a model's traffic, then judge and notify every alert rule.

    The report is the one ``monitor_report`` makes (its results are stored).
    Each rule of ``monitor.alerts`` then fires, re-sends after its cooldown,
    stays quiet within it, or resolves; notifications go to the
    ``atoll.monitor.alerts`` log and the rule's webhooks, and every event is
    stored (read it back with :func:`monitor_alerts`). A webhook that fails is
    recorded as failed and sent again at the next check; it never raises.
    Rule state is kept per model reference as given (``credit-risk@staging``
    and ``credit-risk@production`` fire and resolve apart; a bare name is its
    ``production`` alias).

    Args:
        model: ``name``, ``name@alias`` or ``name@3``, as for ``monitor_report``.
        window: the span to read, ending at ``until`` (default: now); 24 hours
            when none of window, since and until is given.
        since: the first moment of the window (timezone-aware).
        until: the end of the window, exclusive (timezone-aware).
        settings: where the registry lives, and the environment holding the
            webhooks' URLs (``url_env``) and secrets.

    Raises:
        SpecError: a webhook's ``secret_env`` or ``url_env`` is not set, or
            ``url_env`` holds no usable URL (checked before anything is read or sent).
        DataError: an inconsistent window.
        NotFoundError: the model reference does not resolve.
        PackageError: the version has no reference profile.
    """
    require(*MONITORING)
    from atoll.monitor.alerting import run_check, webhook_targets
    from atoll.monitor.run import Window, run_report

    settings = settings_or_project(settings)
    ref = _ref(model)
    if window is None and since is None and until is None:
        window = CHECK_WINDOW
    span = _monitor_window(window, since, until)
    spec = load_project_options(settings.project_dir / SPEC_FILE).monitor
    targets = webhook_targets(spec.alerts, settings.variable)
    with open_registry(settings) as registry:
        report = run_report(registry, ref, Window(span[0], span[1]), spec)
        return run_check(registry.engine, report, _checked(ref), spec.alerts, targets)


def _checked(ref: ModelRef) -> str:
    """The reference alert state is kept under: as given, a bare name as its production alias."""
    if ref.alias is None and ref.version is None:
        ref = ModelRef(ref.name, alias=DEFAULT_ALIAS)
    return str(ref)


def monitor_alerts(
    model: ModelRef | str,
    *,
    rule: str | None = None,
    limit: int = 50,
    settings: Settings | None = None,
) -> list[AlertEvent]:
    """Alert events (fired, repeated, suppressed, resolved, cleared), newest first.

    ``model`` as a bare name lists every reference's events; ``name@alias`` or
    ``name@3`` only those of checks given that reference. Events still being
    sent show delivery ``pending``.
    """
    from atoll.store.alerts import list_events

    settings = settings_or_project(settings)
    ref = _ref(model)
    only = None if ref.alias is None and ref.version is None else str(ref)
    with open_registry(settings) as registry:
        return list_events(registry.engine, ref.name, ref=only, rule=rule, limit=limit)
