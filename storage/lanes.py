"""The inbox's lanes: which stored pushes are applied first.

The values are stored (`call_events.lane`, a small int); the rule that puts a push in a lane is
`telephony/calls/lanes.py`. Storage only orders by them and counts them.
"""

from __future__ import annotations

from enum import IntEnum


class Lane(IntEnum):
    LIVE = 0  # a person waits for it: a call ringing, answered, ended, missed just now
    HISTORY = 1  # the record of what happened: outcomes, ratings, recordings, replays

    @property
    def label(self) -> str:
        """The lane's name in /metrics (`trubka_inbox_backlog{lane="live"}`)."""
        return self.name.lower()
