"""JSON in and out of the server, and the media types the decoders accept.

orjson parses a one-row body in about a microsecond and refuses what strict
clients cannot read back: ``NaN``, ``Infinity``, numbers that overflow a
double, lone surrogates and nesting past 1,024 levels all fail the parse, so
they answer 400 here instead of reaching the model.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from .errors import BadRequest, UnsupportedMediaType

JSON_TYPE = "application/json"
DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def parse_json(body: bytes) -> Any:
    """The parsed body; malformed JSON is a 400 that says where the parse stopped."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None


def dumps(value: Any) -> bytes:
    """Serialize an answer; numpy arrays and scalars are written directly."""
    return orjson.dumps(value, option=DUMP_OPTIONS)


@lru_cache(maxsize=64)
def media_type(content_type: str | None) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``(type, params)`` of a Content-Type header: lower-cased, quotes stripped.

    Clients repeat the same few headers, so parses are cached.
    """
    if content_type is None:
        return "", ()
    kind, *rest = content_type.split(";")
    params = []
    for part in rest:
        key, _, value = part.partition("=")
        if key.strip():
            params.append((key.strip().lower(), value.strip().strip('"').lower()))
    return kind.strip().lower(), tuple(params)


def check_params(content_type: str, params: tuple[tuple[str, str], ...]) -> None:
    """Refuse any parameter but ``charset=utf-8`` (MLflow's rule, and safe: we read UTF-8 only)."""
    for key, value in params:
        if key != "charset":
            raise UnsupportedMediaType(
                f"Content-Type parameter {key!r} is not supported (in {content_type[:100]!r})"
            )
        if value not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"charset {value[:40]!r} is not supported; send UTF-8")
