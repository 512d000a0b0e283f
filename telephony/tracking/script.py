"""`tracker.js` as served: the script with the site's settings baked in, comments stripped."""

from __future__ import annotations

import json
from importlib.resources import files

from telephony.tracking.config import TrackingConfig

_PLACEHOLDER = "/*CONFIG*/null"
_WIDGET_PLACEHOLDER = "/*WIDGET*/null"


def _compact(source: str) -> str:
    """Drop comment lines and indentation (the script keeps comments on lines of their own)."""
    lines = []
    in_block = False
    for raw in source.splitlines():
        line = raw.strip()
        if in_block:
            in_block = "*/" not in line
            continue
        if line.startswith("/*") and _PLACEHOLDER not in line and _WIDGET_PLACEHOLDER not in line:
            in_block = "*/" not in line
            continue
        if not line or line.startswith("//"):
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_tracker(config: TrackingConfig, public_url: str) -> str:
    source = files("telephony.tracking").joinpath("tracker.js").read_text(encoding="utf-8")
    settings = None
    if config.enabled:
        settings = {
            "n": config.default_number,
            "c": config.classes,
            "p": config.lease.ping_interval,
            "a": config.lease.inactive_after,
            "i": config.lease.after_interaction,
            "k": config.cookie_name,
            "d": config.cookie_days,
            "m": config.cookie_domain,
            "u": public_url.rstrip("/"),
            # The widgets' script is fetched this many ms after the page's load (null: off).
            "w": config.widgets.delay_ms if config.widgets.enabled else None,
        }
    # json.dumps of our own validated settings; "</" cannot occur, still escaped for safety.
    baked = json.dumps(settings, ensure_ascii=True).replace("</", "<\\/")
    return _compact(source).replace(_PLACEHOLDER, baked, 1)


def render_widget(config: TrackingConfig, public_url: str) -> str:
    """`widget.js` as served: the widgets' texts, colours and switches baked in."""
    source = files("telephony.tracking").joinpath("widget.js").read_text(encoding="utf-8")
    widgets = config.widgets
    settings = {
        "t": widgets.texts.model_dump(),
        "c": widgets.colours.model_dump(),
        "p": widgets.position,
        "f": widgets.form_attribute,
        "cb": widgets.callback,
        "tg": widgets.telegram_bot is not None,
        "wa": widgets.whatsapp_number is not None,
    }
    baked = json.dumps(settings, ensure_ascii=False).replace("</", "<\\/")
    return _compact(source).replace(_WIDGET_PLACEHOLDER, baked, 1)


def snippet(script_url: str, classes: list[str]) -> str:
    """What a site puts into <head>: hide marked phones at once (a second at most, even when we
    are down), load the tracker without blocking the page."""
    selector = ",".join(f".{name}" for name in classes)
    return (
        "<!-- Trubka call tracking -->\n"
        f'<style id="trubka-hide">{selector}{{visibility:hidden!important}}</style>\n'
        "<script>setTimeout(function(){var s=document.getElementById('trubka-hide');"
        "s&&s.parentNode.removeChild(s)},1000)</script>\n"
        f'<script async src="{script_url}"></script>\n'
    )
