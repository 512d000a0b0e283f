"""Novofon request signing, as the vendor's PHP reference client does it (see apis/novofon.md):
the query is PHP's http_build_query (telephony/infra/phpquery.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from telephony.infra.phpquery import http_build_query


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
