"""The `[tracking]` section of `trubka.toml`: sites, pools and their source rules, the lease policy.

Parsed by pydantic (wrong types name their key), then checked as a whole by `check()` (duplicate
numbers across pools, two default pools …), which names the offending key too.
"""

from __future__ import annotations

import ipaddress
from fnmatch import fnmatchcase
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from telephony.phones import InvalidPhone, normalize_phone
from telephony.tracking.widget_config import WidgetsConfig

DEFAULT_MASK = "+7 (XXX) XXX-XX-XX"
# Lower-case substrings of user agents that are robots, not people (plus an empty agent).
DEFAULT_BOT_AGENTS = (
    "bot",
    "crawl",
    "spider",
    "slurp",
    "headlesschrome",
    "lighthouse",
    "pagespeed",
    "python-",
    "curl/",
    "wget/",
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigProblem(ValueError):
    """A semantic problem of the section; `key` is the dotted path of the wrong setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _phone(value: str) -> str:
    try:
        return normalize_phone(value)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from None


# A phone in any written form, kept normalized; a wrong one is reported with its list index.
Phone = Annotated[str, Field(max_length=64), AfterValidator(_phone)]


class _Strict(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class LeasePolicy(_Strict):
    """How long a visitor keeps a number (seconds)."""

    # The tracker pings this often while the page is visible and in use.
    ping_interval: int = Field(default=10, ge=5, le=600)
    # No ping for this long (tab closed or hidden): the number goes back to the pool. (Was 60 s
    # with pings every 20 s; 30 s gives about one point more exact calls at the formula's pool
    # size in the simulator, see README "Toward 95%".)
    idle_timeout: int = Field(default=30, ge=10, le=3600)
    # The tracker stops pinging after this long without a click, key, scroll or touch: a tab
    # left open on a desktop does not hold a number for hours.
    inactive_after: int = Field(default=600, ge=30, le=24 * 3600)
    # A lease is never extended past this length (a tab left open all day, a robot).
    max_length: int = Field(default=4 * 3600, ge=60, le=7 * 24 * 3600)
    # After the last ping a call to the number is still this visit's, unless the number was
    # leased to somebody else in between.
    grace: int = Field(default=30 * 60, ge=0, le=7 * 24 * 3600)
    # A returning visitor (same cookie, no new campaign tags) keeps their visit this long.
    visit_timeout: int = Field(default=30 * 60, ge=60, le=7 * 24 * 3600)
    # The script asks for a number only once the page is visible and the visitor scrolled,
    # pointed, typed or touched; until then the page keeps the site's own number. Scripts that
    # load pages without a person do not take numbers from the pool.
    after_interaction: bool = False

    @field_validator("idle_timeout")
    @classmethod
    def _after_pings(cls, value: int, info: ValidationInfo) -> int:
        ping = info.data.get("ping_interval")
        if ping is not None and value <= ping:
            raise ValueError(f"must be longer than ping_interval ({ping} s)")
        return value


class Limits(_Strict):
    """`[tracking.limits]`: nobody drains the pool. Requests to `/ct/v1/visit` and `/ct/v1/ping`
    per client address and per network (/24 for IPv4, /48 for IPv6) are token buckets (a rate per
    minute, a burst); over it the answer is 429 with Retry-After. Live leases per address and per
    network are capped: beyond the cap a visit sees the pool's static number (its source is still
    known). An address (or network) refused once is penalized for `penalty_minutes`: its live
    leases end at once and it takes no numbers meanwhile, so a fast script's first burst does not
    keep numbers. 0 turns a limit off. Only public addresses are limited (a proxy missing from
    `trusted_proxies` shows up as a private or loopback address and would limit everybody)."""

    requests_per_minute: int = Field(default=60, ge=0, le=100_000)
    burst: int = Field(default=20, ge=1, le=100_000)
    network_requests_per_minute: int = Field(default=600, ge=0, le=1_000_000)
    network_burst: int = Field(default=200, ge=1, le=1_000_000)
    leases_per_address: int = Field(default=2, ge=0, le=10_000)
    leases_per_network: int = Field(default=6, ge=0, le=10_000)
    penalty_minutes: int = Field(default=10, ge=0, le=24 * 60)


class ShortCalls(_Strict):
    """`[tracking.short_calls]`: a call to a tracking number shorter than `seconds` from a phone
    that called at least `min_calls` times (this one included) within `window_hours` is flagged
    `suspected_fraud` (someone dialling the pool to spoil its figures). `seconds = 0`: off."""

    seconds: int = Field(default=10, ge=0, le=3600)
    min_calls: int = Field(default=3, ge=1, le=1000)
    window_hours: int = Field(default=24, ge=1, le=24 * 90)


class Pool(_Strict):
    """Tracking numbers for one source, with the rules that send a visit to it."""

    name: str = Field(min_length=1, max_length=100)
    # The source recorded for its calls ("Яндекс.Директ"); the pool's name when not given.
    source: str | None = Field(default=None, max_length=200)
    numbers: list[Phone] = Field(min_length=1)
    # Shown when every number is leased: calls to it are known by source only.
    static_number: str | None = Field(default=None, max_length=64)
    # Rules: every listed criterion must match (any of its values); patterns are shell globs,
    # compared case-insensitively. `referrer` matches the referrer's host name.
    utm_source: list[str] = Field(default_factory=list)
    utm_medium: list[str] = Field(default_factory=list)
    utm_campaign: list[str] = Field(default_factory=list)
    referrer: list[str] = Field(default_factory=list)
    yclid: bool | None = None  # true: visits with a yclid (Yandex Direct adds it to its links)
    default: bool = False  # visits no other pool matched

    @field_validator("static_number")
    @classmethod
    def _static(cls, value: str | None) -> str | None:
        return _phone(value) if value else None

    @field_validator("utm_source", "utm_medium", "utm_campaign", "referrer")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [value.strip().lower() for value in values if value.strip()]

    @property
    def label(self) -> str:
        return self.source or self.name

    @property
    def has_rules(self) -> bool:
        return bool(
            self.utm_source
            or self.utm_medium
            or self.utm_campaign
            or self.referrer
            or self.yclid is not None
        )

    def matches(self, context: SourceContext) -> bool:
        if not self.has_rules:
            return False
        checks = (
            (self.utm_source, context.utm_source),
            (self.utm_medium, context.utm_medium),
            (self.utm_campaign, context.utm_campaign),
            (self.referrer, context.referrer_host),
        )
        for patterns, value in checks:
            if patterns and not _any_glob(patterns, value):
                return False
        return self.yclid is None or self.yclid == bool(context.yclid)


def _any_glob(patterns: list[str], value: str | None) -> bool:
    if not value:
        return False
    value = value.lower()
    return any(fnmatchcase(value, pattern) for pattern in patterns)


class SourceContext(BaseModel):
    """What a visit tells about where it came from."""

    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    referrer_host: str | None = None
    yclid: str | None = None


class TrackingConfig(_Strict):
    """`[tracking]`. Without pools call tracking is off and `/ct/` answers 404."""

    # Origins of the sites that embed the tracker (`https://example.ru`): CORS allows only these.
    sites: list[str] = Field(default_factory=list)
    # The number printed on the site: what the tracker looks for, and what robots keep seeing.
    default_number: str | None = Field(default=None, max_length=64)
    mask: str = Field(default=DEFAULT_MASK, max_length=64)
    # Elements with any of these classes get the number even when written otherwise.
    classes: list[Annotated[str, Field(pattern=r"^[A-Za-z_][-A-Za-z0-9_]*$")]] = Field(
        default_factory=lambda: ["zphone"], min_length=1
    )
    cookie_name: str = Field(default="trubka_visit", pattern=r"^[A-Za-z0-9_]{1,64}$")
    cookie_days: int = Field(default=30, ge=1, le=400)
    cookie_domain: str | None = Field(default=None, pattern=r"^\.?[A-Za-z0-9.-]+$")
    # Office addresses, monitoring: get the default number and no lease.
    exclude_ips: list[str] = Field(default_factory=list)
    bot_user_agents: list[str] = Field(default_factory=lambda: list(DEFAULT_BOT_AGENTS))
    # Reverse proxies whose X-Forwarded-For is believed (the visitor's address for exclude_ips).
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    lease: LeasePolicy = Field(default_factory=LeasePolicy)
    limits: Limits = Field(default_factory=Limits)
    short_calls: ShortCalls = Field(default_factory=ShortCalls)
    widgets: WidgetsConfig = Field(default_factory=WidgetsConfig)
    pools: list[Pool] = Field(default_factory=list)

    @field_validator("sites")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        origins = []
        for value in values:
            parts = urlsplit(value.strip())
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{value!r} is not an origin like https://example.ru")
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError(f"{value!r}: an origin has no path (https://example.ru)")
            origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
        return origins

    @field_validator("default_number")
    @classmethod
    def _default_number(cls, value: str | None) -> str | None:
        return _phone(value) if value else None

    @field_validator("mask")
    @classmethod
    def _mask(cls, value: str) -> str:
        if not 1 <= value.count("X") <= 15:
            raise ValueError("must contain the digits' places as X, e.g. +7 (XXX) XXX-XX-XX")
        return value

    @field_validator("exclude_ips", "trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or network") from None
        return [value.strip() for value in values]

    @field_validator("bot_user_agents")
    @classmethod
    def _agents(cls, values: list[str]) -> list[str]:
        return [value.lower() for value in values if value]

    @property
    def enabled(self) -> bool:
        return bool(self.pools)

    def networks(self, which: str = "exclude_ips") -> list[Network]:
        values: list[str] = getattr(self, which)
        return [ipaddress.ip_network(value, strict=False) for value in values]

    def pool_for(self, context: SourceContext) -> Pool | None:
        for pool in self.pools:
            if pool.matches(context):
                return pool
        return next((pool for pool in self.pools if pool.default), None)

    def pool_named(self, name: str | None) -> Pool | None:
        return next((pool for pool in self.pools if pool.name == name), None)

    def pool_of_number(self, number: str) -> Pool | None:
        """The pool a tracking or static number belongs to."""
        for pool in self.pools:
            if number in pool.numbers or number == pool.static_number:
                return pool
        return None

    def format(self, number: str) -> str:
        """Fill the mask's X from the number's last digits: `+7 (495) 000-11-22`."""
        places = self.mask.count("X")
        digits = iter(number[-places:].rjust(places, "0"))
        return "".join(next(digits) if ch == "X" else ch for ch in self.mask)


def check(config: TrackingConfig) -> None:
    """Whole-section rules pydantic's per-field checks cannot see. Raises ConfigProblem."""
    if not config.pools:
        return
    if config.default_number is None:
        raise ConfigProblem("tracking.default_number", "required when pools are configured")
    if not config.sites:
        raise ConfigProblem("tracking.sites", "list the site origins that embed the tracker")
    seen: dict[str, str] = {config.default_number: "tracking.default_number"}
    names: set[str] = set()
    defaults = 0
    for index, pool in enumerate(config.pools):
        key = f"tracking.pools[{index}]"
        if pool.name in names:
            raise ConfigProblem(f"{key}.name", f"{pool.name!r} is used by another pool")
        names.add(pool.name)
        if pool.default:
            defaults += 1
            if defaults > 1:
                raise ConfigProblem(f"{key}.default", "only one pool can be the default")
        elif not pool.has_rules:
            raise ConfigProblem(
                key,
                "give rules (utm_source, utm_medium, utm_campaign, referrer, yclid) "
                "or make it the default pool",
            )
        owned = [(f"{key}.numbers[{i}]", number) for i, number in enumerate(pool.numbers)]
        if pool.static_number:
            owned.append((f"{key}.static_number", pool.static_number))
        for number_key, number in owned:
            if number in seen:
                raise ConfigProblem(number_key, f"{number} is already listed at {seen[number]}")
            seen[number] = number_key
