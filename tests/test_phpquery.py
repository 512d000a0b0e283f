"""PHP http_build_query, byte for byte (expected strings produced by PHP 8.2): the one builder
behind Roistat's proxy queries and Novofon's signed ones."""

from __future__ import annotations

from telephony.infra.phpquery import http_build_query
from telephony.providers.novofon.signing import request_query


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


def test_scalars_nulls_and_positions_inside_lists() -> None:
    # A null inside a list is skipped but keeps its index, as in PHP; tuples are lists;
    # booleans nested or not are 1/0; an empty mapping sends nothing; `~` is encoded.
    assert http_build_query(
        {"a": ["x", None, "z"], "t": (True, False), "m": {"k": "v"}, "e": {}, "n": 0}
    ) == ("a%5B0%5D=x&a%5B2%5D=z&t%5B0%5D=1&t%5B1%5D=0&m%5Bk%5D=v&n=0")
    assert http_build_query({"a": "x y", "b": "~tilde", "c": "ё&=+"}) == (
        "a=x+y&b=%7Etilde&c=%D1%91%26%3D%2B"
    )


def test_novofon_signs_the_same_string() -> None:
    # Novofon's signed query is this builder's output over the sorted parameters.
    params = {"to": "7 926", "sip": None, "from": "~2", "predicted": True}
    assert request_query(params) == http_build_query(
        {"format": "json", "from": "~2", "predicted": True, "to": "7 926"}
    )
    assert request_query(params) == "format=json&from=%7E2&predicted=1&to=7+926"
