"""The call pipeline: its steps run in the declared order, inside the push's transaction, and a
failing step never sets a push aside (it is decided again after the commit)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import Call, CallEvent
from telephony.calls.inbox import CallInbox
from telephony.calls.pipeline import (
    Attributed,
    CallPipeline,
    FraudChecked,
    LeadDecision,
    NotesQueued,
    ScenarioJobs,
)
from telephony.events import CallUpdate
from telephony.providers.megafon import PROVIDER, dedup_key, parse_call_push
from tests.megafon_replay import load


@dataclass
class Journal:
    """What the steps saw, in the order they saw it."""

    lines: list[str] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)  # step → failures to come


class Step:
    """A step that records when it decides (and whether the push's call is already in the
    database it decides in) and what its `committed` was given."""

    def __init__(self, name: str, journal: Journal, result: object) -> None:
        self.name, self.journal, self.result = name, journal, result

    async def decide(self, session: AsyncSession, update: CallUpdate) -> object:
        if self.journal.failing.get(self.name):
            self.journal.failing[self.name] -= 1
            raise RuntimeError(f"{self.name} broke")
        stored = await session.get(Call, update.call.id)
        self.journal.lines.append(f"decide {self.name} {update.trigger} seen={stored is not None}")
        return self.result

    async def committed(self, update: CallUpdate, result: object) -> None:
        self.journal.lines.append(f"committed {self.name} {result!r}")


def plugged(db: Database, journal: Journal) -> CallPipeline:
    pipeline = CallPipeline(db)
    steps = pipeline.steps
    # Plugged in any order (as features are set up): they run in the pipeline's order.
    steps.scenarios = Step("scenarios", journal, ScenarioJobs(1))
    steps.notes = Step("notes", journal, NotesQueued(2))
    steps.leads = Step("leads", journal, LeadDecision(queued=True))
    steps.fraud = Step("fraud", journal, FraudChecked(False))
    steps.tracking = Step("tracking", journal, Attributed(True))
    return pipeline


async def apply(db: Database, pipeline: CallPipeline, pushes: list[dict[str, str]]) -> None:
    inbox = CallInbox(db, pipeline, {PROVIDER: parse_call_push})
    await inbox.start()
    for fields in pushes:
        await inbox.submit(PROVIDER, fields, dedup_key(fields), command=fields["cmd"])
    await inbox.drain()
    await inbox.stop()


async def test_the_steps_run_in_the_declared_order_then_after_the_commit(any_db: Database) -> None:
    journal = Journal()
    history = load("inbound_answered")[-1]
    await apply(any_db, plugged(any_db, journal), [history])
    assert journal.lines == [
        "decide tracking history seen=True",
        "decide fraud history seen=True",
        "decide leads history seen=True",
        "decide notes history seen=True",
        "decide scenarios history seen=True",
        "committed tracking Attributed(attributed=True)",
        "committed fraud FraudChecked(suspected=False)",
        "committed leads LeadDecision(queued=True, new_leads=())",
        "committed notes NotesQueued(sends=2)",
        "committed scenarios ScenarioJobs(stored=1)",
    ]


async def test_a_failing_step_is_decided_again_after_the_commit_and_sets_nothing_aside(
    any_db: Database,
) -> None:
    journal = Journal(failing={"leads": 2})  # in the slice, then applied alone
    history = load("inbound_answered")[-1]
    await apply(any_db, plugged(any_db, journal), [history])
    async with any_db.session() as session:
        [event] = (await session.exec(select(CallEvent))).all()
    assert event.processed_at is not None and event.error is None  # applied, not set aside
    # The slice rolled back; applied alone the step failed again (in its savepoint): it is
    # decided in a transaction of its own after the commit, before its `committed`.
    assert journal.lines[-6:] == [
        "committed tracking Attributed(attributed=True)",
        "committed fraud FraudChecked(suspected=False)",
        "decide leads history seen=True",
        "committed leads LeadDecision(queued=True, new_leads=())",
        "committed notes NotesQueued(sends=2)",
        "committed scenarios ScenarioJobs(stored=1)",
    ]
