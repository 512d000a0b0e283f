"""What a page view tells about its visitor: campaign tags, device, robot or office."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from telephony.tracking.config import SourceContext, TrackingConfig

UTM_TAGS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
# Tags that mean "a new ad click": a returning visitor with different ones starts a new visit.
CAMPAIGN_TAGS = ("utm_source", "utm_medium", "utm_campaign", "yclid")

_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook|android(?!.*mobile)", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android|windows phone|opera mini", re.IGNORECASE)


@dataclass(frozen=True)
class PageView:
    """One `POST /ct/v1/visit` as the domain sees it (already length-checked by the handler)."""

    url: str
    visit_id: str | None = None
    referrer: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    metrika_client_id: str | None = None
    roistat_visit: str | None = None
    ga_client_id: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None
    yclid: str | None = None
    # False for a penalized address (over its request budget): the visit is stored and shown
    # the pool's static number, and takes no number from the pool.
    may_lease: bool = True

    def tags(self) -> dict[str, str | None]:
        """UTM tags and yclid: given explicitly, else read from the page URL."""
        query = dict(parse_qsl(urlsplit(self.url).query))
        tags: dict[str, str | None] = {}
        for name in (*UTM_TAGS, "yclid"):
            value = getattr(self, name) or query.get(name) or None
            tags[name] = value[:300] if value else None
        return tags

    def source_context(self) -> SourceContext:
        tags = self.tags()
        return SourceContext(
            utm_source=tags["utm_source"],
            utm_medium=tags["utm_medium"],
            utm_campaign=tags["utm_campaign"],
            referrer_host=referrer_host(self.referrer, self.url),
            yclid=tags["yclid"],
        )


def referrer_host(referrer: str | None, page_url: str) -> str | None:
    """The referrer's host, None for none or for the site's own pages (internal navigation)."""
    if not referrer:
        return None
    host = (urlsplit(referrer).hostname or "").lower()
    own = (urlsplit(page_url).hostname or "").lower()
    return host if host and host != own else None


def device_type(user_agent: str | None) -> str:
    agent = user_agent or ""
    if _TABLET.search(agent):
        return "tablet"
    if _MOBILE.search(agent):
        return "mobile"
    return "desktop"


def ga_client_id(cookie: str | None) -> str | None:
    """`_ga` cookie `GA1.2.1234567890.1700000000` → client id `1234567890.1700000000`."""
    if not cookie:
        return None
    parts = cookie.split(".")
    if len(parts) >= 4 and parts[0].startswith("GA"):
        return ".".join(parts[-2:])
    return cookie


def is_excluded(config: TrackingConfig, ip: str | None, user_agent: str | None) -> bool:
    """Robots and excluded networks (the office) see the default number and take no lease."""
    agent = (user_agent or "").lower()
    if not agent or any(marker in agent for marker in config.bot_user_agents):
        return True
    return excluded_address(config, ip)


def excluded_address(config: TrackingConfig, ip: str | None) -> bool:
    """An address of `exclude_ips` (the office): no lease, and no request limits either."""
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in config.networks("exclude_ips"))


def client_ip(config: TrackingConfig, remote: str | None, forwarded_for: str | None) -> str | None:
    """The visitor's address: X-Forwarded-For's last untrusted hop behind trusted proxies."""
    if not remote:
        return None
    trusted = config.networks("trusted_proxies")

    def is_trusted(ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in trusted)

    if not forwarded_for or not is_trusted(remote):
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else remote
