"""Novofon request signing, as the vendor's PHP reference client does it (see apis/novofon.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote_plus


def _php_urlencode(value: str) -> str:
    """PHP's urlencode (RFC 1738): like quote_plus, but `~` is encoded too."""
    return quote_plus(value, safe="").replace("~", "%7E")


def _php_scalar(value: object) -> str:
    if isinstance(value, bool):  # PHP casts true/false to "1"/"0"
        return "1" if value else "0"
    return str(value)


def _build_pairs(prefix: str, value: object, out: list[str]) -> None:
    if value is None:  # http_build_query skips nulls, nested ones included
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _build_pairs(f"{prefix}[{key}]", item, out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _build_pairs(f"{prefix}[{index}]", item, out)
    else:
        out.append(f"{_php_urlencode(prefix)}={_php_urlencode(_php_scalar(value))}")


def http_build_query(params: Mapping[str, object]) -> str:
    """PHP's http_build_query(params, '', '&', PHP_QUERY_RFC1738), in the given key order."""
    out: list[str] = []
    for key, value in params.items():
        _build_pairs(str(key), value, out)
    return "&".join(out)


def _hex_hmac_base64(secret: str, text: str) -> str:
    """base64 of the 40-character HEX HMAC-SHA1, not of the raw digest (pitfall 1)."""
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def request_query(params: Mapping[str, object]) -> str:
    """The query string a request sends and signs: format=json added, nulls dropped, sorted."""
    with_format = {**params, "format": "json"}
    ordered = {key: with_format[key] for key in sorted(with_format) if with_format[key] is not None}
    return http_build_query(ordered)


def sign_request(secret: str, method_path: str, query: str) -> str:
    """sign = base64(hex(HMAC_SHA1(secret, method_path + query + md5_hex(query))))."""
    md5 = hashlib.md5(query.encode()).hexdigest()
    return _hex_hmac_base64(secret, method_path + query + md5)
