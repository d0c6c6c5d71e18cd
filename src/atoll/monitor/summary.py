"""One line per check result, for people: the terminal table and the HTML report share it."""

from __future__ import annotations

from typing import Any

from atoll.monitor.status import NO_DATA


def headline(name: str, check: dict[str, Any]) -> str:
    """What a check found, in one line (its reason when it judged nothing)."""
    if "reason" in check:
        return str(check["reason"])
    if check.get("status") == NO_DATA:
        return "nothing in the window to judge"
    if name == "drift":
        alert, warn = ", ".join(check["drifted"]) or "none", ", ".join(check["warned"]) or "none"
        return f"alert: {alert}; warn: {warn}"
    if name == "quality":
        bad = [n for n, c in check["columns"].items() if c["status"] != "ok"]
        absent = [f"{n} (absent)" for n in check["absent_features"]]
        rejected = check.get("rejected_rows")
        line = f"columns with problems: {', '.join(bad + absent) or 'none'}"
        return line if rejected is None else f"{line}; {rejected:,} rows rejected by the schema"
    if name == "performance":
        shown = ", ".join(f"{m} {_number(v)}" for m, v in check["metrics"].items())
        drop = check["metric_drop"]
        versus = "" if drop is None else f" ({check['judged_metric']} {-drop:+.1%} vs training)"
        return f"{check['labelled_rows']:,} labelled rows: {shown}{versus}"
    if name == "fairness":
        flagged = [
            f"{c}: {', '.join(r['flagged'])}"
            for c, r in check["columns"].items()
            if r.get("flagged")
        ]
        return "; ".join(flagged) or "no disparity past its limit"
    latency = check.get("latency_ms", {})
    return f"p50 {latency.get('p50', 0):.1f} ms, p99 {latency.get('p99', 0):.1f} ms"


def _number(value: float | None) -> str:
    """Four decimals; ``-`` for a metric that is undefined (``None`` in plain JSON)."""
    return "-" if value is None else f"{value:.4f}"
