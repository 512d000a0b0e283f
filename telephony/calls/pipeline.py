"""The call pipeline: what happens to a stored call change, in one declared order.

Every call change (an applied push, a requested call) goes through the same steps, IN THIS
ORDER (the fields of `CallSteps`):

1. `tracking`  — the visit (tracking number) the call came in on: leads and scenarios read it;
2. `fraud`     — very short calls to tracking numbers flagged `suspected_fraud`;
3. `leads`     — the call's flags, its lead and the lead's deliveries (Roistat, Metrika);
4. `notes`     — the Telegram notes and alerts of the change;
5. `scenarios` — the jobs of the scenario rules the change triggers.

Each step is a `CallStep`: `decide` (or, for a slice of the inbox, `decide_many`) runs inside the
transaction that applied the push (writes only, no network: the push and everything it decided
commit together, in one transaction, and a crash loses neither half), returning a small typed
result; `committed` runs after the commit with that result. Durable effects go through the queue
engine: the rows a step stores in `decide` (lead outbox rows, Telegram deliveries, scenario jobs)
are queue rows, so nothing a push decided is lost if the process dies at the commit. What
`committed` does is not durable and need not be: waking a queue's worker (it polls anyway; a lost
wake costs latency only), telling the lead observers about a lead the call made (the scenarios'
`lead` trigger: a typed after-commit hook, as for leads from forms), and the `after` observers (the
call log).

A slice is decided set-wise (`decide_many`): in rounds holding each call at most once (the
k-th change of every call in the slice, in the slice's order), every step for the whole round
before the next step, so a step reads and writes the round's rows in a few statements. A call's
changes still go through every step one change after the other, as when decided one by one;
a step without `decide_many` decides each change of the round on its own.

A step that fails inside the slice's transaction rolls the slice back (the inbox then applies
its pushes one by one); applied alone, a failing step runs in a savepoint and is decided again
after the commit in a transaction of its own (it never sets the push aside). A change that was
not applied by the inbox (a requested call) has every step decided in its own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from telephony.events import CallObserver, CallUpdate, FanOut, LeadInfo

log = logging.getLogger(__name__)
R = TypeVar("R")


# -- what each step decides ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attributed:
    """Tracking: whether the call was attributed to a visit by this change."""

    attributed: bool = False


@dataclass(frozen=True)
class FraudChecked:
    """Short calls: the flag this change set (None: not decided by this change)."""

    suspected: bool | None = None


@dataclass(frozen=True)
class CallbackAnswered:
    """A site's callback request this call answers (its id), if any."""

    request_id: int | None = None


@dataclass(frozen=True)
class LeadDecision:
    """Leads: whether deliveries were queued, and the leads the call made."""

    queued: bool = False
    new_leads: tuple[LeadInfo, ...] = ()


@dataclass(frozen=True)
class NotesQueued:
    """Telegram: how many sends the change queued, and of those that are alerts (a ringing or
    missed call: the sender looks at once) the chats, each with the fewest sends an alert
    there takes (a topic not made yet: three)."""

    sends: int = 0
    alerts: Mapping[int, int] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ScenarioJobs:
    """Scenarios: how many jobs the change stored."""

    stored: int = 0


class CallStep(Protocol[R]):
    """One step of the pipeline."""

    async def decide(self, session: AsyncSession, update: CallUpdate) -> R:
        """In the transaction that applied the change: writes only, no network."""
        ...

    async def committed(self, update: CallUpdate, result: R) -> None:
        """After the commit, with what `decide` returned: wake a queue, tell observers."""
        ...


class BatchedStep(CallStep[R], Protocol[R]):
    """A step that also decides a round of changes set-wise (each call at most once)."""

    async def decide_many(self, session: AsyncSession, updates: Sequence[CallUpdate]) -> list[R]:
        """What `decide` returns for each change, in order, as if decided one by one."""
        ...


@dataclass
class CallSteps:
    """The pipeline's steps; they run in the order of these fields (see the module's doc).
    Each feature's setup plugs its own step in; a feature that is off leaves its None."""

    tracking: CallStep[Attributed] | None = None
    fraud: CallStep[FraudChecked] | None = None
    callback: CallStep[CallbackAnswered] | None = None
    leads: CallStep[LeadDecision] | None = None
    notes: CallStep[NotesQueued] | None = None
    scenarios: CallStep[ScenarioJobs] | None = None

    def in_order(self) -> list[CallStep[Any]]:
        steps: tuple[CallStep[Any] | None, ...] = (
            self.tracking,
            self.fraud,
            self.callback,
            self.leads,
            self.notes,
            self.scenarios,
        )
        return [step for step in steps if step is not None]


@dataclass
class Decision(Generic[R]):
    """One step's result for one change; None: decide again after the commit."""

    step: CallStep[R]
    result: R | None


@dataclass
class Decided:
    """What the steps decided for one change, in their order."""

    update: CallUpdate
    decisions: list[Decision[Any]] = field(default_factory=list)


class CallPipeline:
    """Runs the steps for each call change; a CallObserver for changes made outside the inbox
    (a requested call: `call_updated` decides each step in its own transaction)."""

    def __init__(
        self,
        db: Database,
        steps: CallSteps | None = None,
        *,
        after: Sequence[CallObserver] = (),
    ) -> None:
        self._db = db
        self.steps = steps or CallSteps()
        # Told after the commit and after the steps: no decisions of their own (the call log).
        self.after: FanOut[CallObserver] = FanOut(after, name="call observer")

    async def decide(
        self, session: AsyncSession, update: CallUpdate, *, alone: bool = False
    ) -> Decided:
        """Every step in the caller's transaction. `alone`: each in a savepoint, a failing
        one left to `committed` (it then decides in a transaction of its own)."""
        decided = Decided(update)
        for step in self.steps.in_order():
            decided.decisions.append(await self._decide(step, session, update, alone=alone))
        return decided

    async def decide_many(
        self, session: AsyncSession, updates: Sequence[CallUpdate]
    ) -> list[Decided]:
        """Every step for a slice of changes in the caller's transaction, set-wise by rounds
        (see the module's doc); what each change decided, in the slice's order."""
        decided = [Decided(update) for update in updates]
        for round_ in _rounds(decided):
            round_updates = [each.update for each in round_]
            for step in self.steps.in_order():
                results = await _decide_round(step, session, round_updates)
                for each, result in zip(round_, results, strict=True):
                    each.decisions.append(Decision(step, result))
        return decided

    async def _decide(
        self, step: CallStep[R], session: AsyncSession, update: CallUpdate, *, alone: bool
    ) -> Decision[R]:
        if not alone:
            return Decision(step, await step.decide(session, update))
        try:
            async with session.begin_nested():
                return Decision(step, await step.decide(session, update))
        except Exception:
            log.exception("pipeline: %s on call %s failed", _name(step), update.call.id)
            return Decision(step, None)

    async def committed(self, decided: Decided) -> None:
        """After the commit: each step's `committed` (a step not decided yet decides first, in
        its own transaction), then the `after` observers. One failing step stops no other."""
        update = decided.update
        for decision in decided.decisions:
            try:
                await self._finish(decision, update)
            except Exception:
                step = _name(decision.step)
                log.exception("pipeline: %s on call %s failed", step, update.call.id)
        await self.after.tell(lambda observer: observer.call_updated(update))

    async def _finish(self, decision: Decision[R], update: CallUpdate) -> None:
        result = decision.result
        if result is None:
            async with self._db.session() as session:
                result = await decision.step.decide(session, update)
        await decision.step.committed(update, result)

    async def call_updated(self, update: CallUpdate) -> None:
        """A change stored outside the inbox (committed already): every step on its own."""
        await self.committed(
            Decided(update, [Decision(step, None) for step in self.steps.in_order()])
        )


async def _decide_round(
    step: CallStep[R], session: AsyncSession, updates: list[CallUpdate]
) -> list[R]:
    many = getattr(step, "decide_many", None)
    if many is not None:
        results: list[R] = await many(session, updates)
        return results
    return [await step.decide(session, update) for update in updates]


def _rounds(decided: list[Decided]) -> list[list[Decided]]:
    """The k-th change of each call in round k, keeping the slice's order within a round."""
    rounds: list[list[Decided]] = []
    seen: dict[object, int] = {}
    for each in decided:
        call = each.update.call
        key: object = call.id if call.id is not None else id(call)
        k = seen.get(key, 0)
        seen[key] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(each)
    return rounds


def _name(step: object) -> str:
    return step.__class__.__name__
