"""What must not happen by accident, checked on the channel routing chose:

- opt-out: a client who wrote «СТОП»/«STOP» (or whose variable `opt_out` is set) gets no
  non-transactional message (a scenario's, unless its action says `transactional: true`);
- quiet hours: no SMS / WhatsApp at night in TRUBKA_TIMEZONE unless the action is `urgent`;
  such a send is deferred to the morning, not dropped;
- a per-client cap per local day over SMS + WhatsApp, and the whole bot's daily SMS budget
  (TRUBKA_SMS_DAILY_LIMIT): stored counters (storage.channel_queue.take_counter), so they
  survive restarts and are shared by processes.
A refusal is a line in the client's dialog and a `trubka_channel_refusals{channel,reason}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from telephony.channels.base import ChannelKind

OPT_OUT_VARIABLE = "opt_out"
# «СТОП», «стоп!», "STOP", "Stop." — the whole message, nothing else.
_STOP = re.compile(r"^\s*(стоп|stop|отписаться|unsubscribe)\s*[.!]*\s*$", re.IGNORECASE)
_FALSE = {"", "0", "no", "false", "нет", "off"}
# Channels the limits apply to: they cost money or reach a phone unasked.
COSTLY = frozenset({ChannelKind.SMS, ChannelKind.WHATSAPP})


def is_stop_word(text: str) -> bool:
    return _STOP.match(text) is not None


def opted_out(variables: Mapping[str, str]) -> bool:
    return variables.get(OPT_OUT_VARIABLE, "").strip().lower() not in _FALSE


def parse_quiet_hours(value: str) -> tuple[time, time] | None:
    """`21:00-09:00` (over midnight) or `off`/empty → None."""
    text = value.strip().lower()
    if text in ("", "off", "none", "0"):
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text)
    if match is None:
        raise ValueError("quiet hours look like 21:00-09:00 (or off)")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
        raise ValueError("quiet hours look like 21:00-09:00 (or off)")
    return time(h1, m1), time(h2, m2)


@dataclass(frozen=True)
class Limits:
    zone: ZoneInfo
    quiet: tuple[time, time] | None = (time(21), time(9))
    client_daily: int = 5  # SMS + WhatsApp messages to one client a day; 0 = no cap
    sms_daily: int = 0  # SMS for the whole bot a day; 0 = no budget

    def day(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).date().isoformat()

    def quiet_until(self, now: datetime) -> datetime | None:
        """When the quiet hours around `now` end (None: not quiet now)."""
        if self.quiet is None:
            return None
        start, end = self.quiet
        local = now.astimezone(self.zone)
        clock = local.time()
        # 21:00-09:00 runs over midnight
        quiet = start <= clock < end if start < end else clock >= start or clock < end
        if not quiet:
            return None
        morning = datetime.combine(local.date(), end, tzinfo=self.zone)
        if morning <= local:
            morning = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=self.zone)
        return morning
