"""JSON in and out of the server, and the media types the decoders accept.

orjson parses a one-row body in about a microsecond and refuses what strict
clients cannot read back: ``NaN``, ``Infinity``, numbers that overflow a
double, lone surrogates and nesting past 1,024 levels all fail the parse, so
they answer 400 here instead of reaching the model.

Nesting is capped lower, at ``serve.limits.max_json_depth`` (32), without
walking every body: the decoders accept only their protocol's shapes, whose
cells must be single values, so an accepted body is never deeper than the
few levels of its shape, except in the parts a protocol leaves free
(parameters, unknown keys), which the decoders measure with
:func:`check_depth`. A body a decoder refuses is measured by
:func:`decode_json`, so that its error says the depth when that is what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from itertools import compress
from typing import Any, TypeVar

import orjson

from .errors import BadRequest, UnsupportedMediaType

JSON_TYPE = "application/json"
DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
DEPTH_SETTING = "serve.limits.max_json_depth"
_IS_CONTAINER = frozenset({list, dict}).__contains__
T = TypeVar("T")


class JsonTooDeep(BadRequest):
    code = "json_too_deep"


def parse_json(body: bytes) -> Any:
    """The parsed body; malformed JSON is a 400 that says where the parse stopped."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if str(error).startswith("depth limit exceeded"):
            raise JsonTooDeep(f"the body is nested too deeply ({DEPTH_SETTING})") from None
        raise BadRequest(f"the body is not valid JSON: {error}") from None


def decode_json(body: bytes, max_depth: int, decode: Callable[[Any], T]) -> T:
    """Parse ``body`` and hand it to ``decode``; a refused body deeper than ``max_depth`` says so.

    ``decode`` must check the free-form parts of its protocol with :func:`check_depth`.
    """
    data = parse_json(body)
    try:
        return decode(data)
    except JsonTooDeep:
        raise
    except BadRequest:
        if is_deeper(data, max_depth):
            raise _too_deep(max_depth) from None
        raise


def check_depth(value: Any, levels: int, max_depth: int) -> None:
    """Refuse a free-form part that takes the body past ``max_depth``.

    Args:
        value: the part (a parameters object, an unknown key's value).
        levels: how deep in the body it sits (its own level: 2 for a top-level key's value).
        max_depth: the limit on the whole body.
    """
    if type(value) in (list, dict) and is_deeper(value, max_depth - levels + 1):
        raise _too_deep(max_depth)


def check_other_keys(
    obj: dict[str, Any], known: tuple[str, ...], levels: int, max_depth: int
) -> None:
    """:func:`check_depth` for every value of ``obj`` (at ``levels``) but those of ``known``."""
    for key, value in obj.items():
        if key not in known:
            check_depth(value, levels, max_depth)


def is_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels (a scalar: 0).

    Breadth first, a level at a time; the scalars of a level are filtered out in C.
    """
    level = [value] if _IS_CONTAINER(type(value)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        children: list[Any] = []
        for item in level:
            children.extend(item.values() if type(item) is dict else item)
        level = list(compress(children, map(_IS_CONTAINER, map(type, children))))
    return False


def _too_deep(max_depth: int) -> JsonTooDeep:
    return JsonTooDeep(f"the body is nested deeper than {max_depth} levels ({DEPTH_SETTING})")


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
