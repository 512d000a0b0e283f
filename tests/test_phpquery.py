"""PHP http_build_query, byte for byte (expected strings produced by PHP 8.2)."""

from __future__ import annotations

from telephony.leads.phpquery import http_build_query


def test_nested_fields_use_encoded_brackets_like_php() -> None:
    data = {
        "roistat": "nocookie",
        "key": "abc",
        "title": "Звонок с сайта 79101234567",
        "fields": {"charset": "UTF-8", "tags": "a, b~c", "1276733": "{city}"},
        "client_fields": {},
        "skip": None,
        "flag": True,
        "list": ["51", "52"],
    }
    assert http_build_query(data) == (
        "roistat=nocookie&key=abc"
        "&title=%D0%97%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA+%D1%81+%D1%81%D0%B0%D0%B9%D1%82%D0%B0"
        "+79101234567"
        "&fields%5Bcharset%5D=UTF-8&fields%5Btags%5D=a%2C+b%7Ec&fields%5B1276733%5D=%7Bcity%7D"
        "&flag=1&list%5B0%5D=51&list%5B1%5D=52"
    )


def test_reserved_characters() -> None:
    assert http_build_query({"u": "https://x.ru/a?b=1&c=2#d", "e": "a.b-c_d*"}) == (
        "u=https%3A%2F%2Fx.ru%2Fa%3Fb%3D1%26c%3D2%23d&e=a.b-c_d%2A"
    )
