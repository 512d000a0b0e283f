"""How sure an attribution is: one vocabulary for the API, the reports and `/metrics`.

- `exact`: the visit holding the dialled number had its page open when the call came (earlier
  holders still within their grace are listed as candidates);
- `probable`: the newest holder had left within the grace time (alone: `grace`; with earlier
  holders also within theirs: `shared`, all listed as candidates), or no lease explains the
  call but the caller was tied to a visit by an earlier call (a returning caller);
- `channel`: only the pool's source is known (the static number, or nobody held the number);
- `none`: the call is not attributed at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.attribution_queries import earlier_visit_of_caller
from storage.models import CallAttribution

# A caller's earlier visit explains a call this long after that call (Delacon-style).
RETURNING_WINDOW = timedelta(days=30)


class Holder(Protocol):
    """What judging needs of a lease (a TrackingLease, or the demo generator's own)."""

    @property
    def visit_id(self) -> str | None: ...

    @property
    def ends_at(self) -> datetime: ...


class Confidence(StrEnum):
    EXACT = "exact"
    PROBABLE = "probable"
    CHANNEL = "channel"
    NONE = "none"


class MatchedBy(StrEnum):
    LEASE = "lease"  # the visit holding the number, page open
    GRACE = "grace"  # the holder's page had closed; within the grace after its last ping
    SHARED = "shared"  # closed, and earlier holders are within their grace too; newest taken
    RETURNING = "returning"  # no lease: the caller's earlier visit (by an earlier call)
    STATIC = "static"  # the pool's static number (the pool was full)
    POOL = "pool"  # nobody held the number
    PROVIDER = "provider"  # the telephony provider's own call tracking
    CALLBACK = "callback"  # a callback the visit asked for on the site (exact by construction)
    CHAT = "chat"  # a chat started from the visit's messenger link (exact by construction)


@dataclass(frozen=True)
class Judgement:
    confidence: Confidence
    matched_by: MatchedBy
    visit_id: str | None = None
    candidates: list[str] = field(default_factory=list)

    def columns(self) -> dict[str, object]:
        return {
            "confidence": self.confidence.value,
            "matched_by": self.matched_by.value,
            "candidate_visits": json.dumps(self.candidates) if self.candidates else None,
        }


def judge(leases: Sequence[Holder], at: datetime, *, static: bool = False) -> Judgement:
    """Judge the leases still counting at the call's moment (newest first)."""
    if static:
        return Judgement(Confidence.CHANNEL, MatchedBy.STATIC)
    holders = [lease for lease in leases if lease.visit_id is not None]
    if not holders:
        return Judgement(Confidence.CHANNEL, MatchedBy.POOL)
    chosen = holders[0]
    candidates = [lease.visit_id for lease in holders if lease.visit_id is not None]
    visit_id = candidates[0]
    if at <= chosen.ends_at:
        # The page showing the number was open. Earlier holders still in their grace stay
        # listed as candidates: the API shows them; the match itself is the live one.
        return Judgement(Confidence.EXACT, MatchedBy.LEASE, visit_id, candidates)
    matched_by = MatchedBy.SHARED if len(holders) > 1 else MatchedBy.GRACE
    return Judgement(Confidence.PROBABLE, matched_by, visit_id, candidates)


async def returning_caller(
    session: AsyncSession, phone: str | None, call_id: int, at: datetime, judgement: Judgement
) -> Judgement:
    """When no lease explains the call, the caller's earlier visit does (marked `returning`)."""
    if judgement.visit_id is not None or not phone:
        return judgement
    visit_id = await earlier_visit_of_caller(session, phone, call_id, at - RETURNING_WINDOW, at)
    if visit_id is None:
        return judgement
    return Judgement(Confidence.PROBABLE, MatchedBy.RETURNING, visit_id, [visit_id])


def confidence_of(attribution: CallAttribution | None) -> Confidence:
    """Also for rows stored before confidence was recorded, and the provider's own tracking."""
    if attribution is None:
        return Confidence.NONE
    if attribution.confidence:
        return Confidence(attribution.confidence)
    return Confidence.CHANNEL if attribution.channel_level else Confidence.EXACT


def candidates_of(attribution: CallAttribution | None) -> list[str]:
    if attribution is None or not attribution.candidate_visits:
        return []
    values = json.loads(attribution.candidate_visits)
    return [str(value) for value in values] if isinstance(values, list) else []
