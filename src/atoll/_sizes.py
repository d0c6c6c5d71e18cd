"""Sizes in bytes: read from settings and specs (``500MB``), shown to people (``1.2 MB``)."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*")
_SHOWN = ("B", "KB", "MB", "GB", "TB")


def parse_size(value: object) -> int:
    """Bytes from an int or a size such as ``"500MB"``, ``"2 GiB"`` or ``"1048576"``.

    Raises:
        ValueError: not a positive size with a known unit (B, KB, MB, GB, TB, KiB...).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.fullmatch(value.lower()) if isinstance(value, str) else None
        if match is None or match.group(2) not in _UNITS:
            raise ValueError(f"{value!r} is not a size: give bytes, or e.g. 500MB or 2GiB")
        size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size <= 0:
        raise ValueError(f"a size must be positive, not {value!r}")
    return size


def human_bytes(size: int | None) -> str:
    """``"688 B"``, ``"453.1 KB"``, ``"1.2 GB"``: decimal units, as ``parse_size`` reads them."""
    if size is None:
        return "-"
    value = float(size)
    for unit in _SHOWN:
        if abs(value) < 1000 or unit == _SHOWN[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
