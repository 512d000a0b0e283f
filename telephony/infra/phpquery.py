"""PHP's `http_build_query` (PHP_QUERY_RFC1738), byte for byte: Roistat's proxy API reads it and
Novofon signs it (both vendors' reference clients are PHP), so this is the one builder of both.

Nested mappings become `fields[price]=1000` (brackets percent-encoded, as PHP does), lists get
numeric indices, None is skipped, booleans become 1/0, spaces `+`, `~` encoded as `%7E`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote_plus


def urlencode_php(value: str) -> str:
    """PHP's urlencode(): like quote_plus with nothing safe, but `~` is encoded too."""
    return quote_plus(value, safe="").replace("~", "%7E")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _pairs(prefix: str, value: Any) -> list[tuple[str, str]]:
    if value is None:  # PHP skips nulls, nested ones included
        return []
    if isinstance(value, Mapping):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = list(enumerate(value))
    else:
        return [(prefix, _scalar(value))]
    pairs: list[tuple[str, str]] = []
    for key, inner in items:
        pairs.extend(_pairs(f"{prefix}[{key}]", inner))
    return pairs


def http_build_query(data: Mapping[str, Any]) -> str:
    """PHP's http_build_query(data, '', '&', PHP_QUERY_RFC1738), in the given key order."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        pairs.extend(_pairs(str(key), value))
    return "&".join(f"{urlencode_php(k)}={urlencode_php(v)}" for k, v in pairs)
