"""The scheduler's policy, pure: which chat goes next, what goes with it, what it costs.

No I/O: the pass (bot/telegram/sender.py) reads the unsettled deliveries, and these functions
decide over them and the in-memory budgets (bot/telegram/budgets.py), so the order of sends
can be tested without a database or a Bot API.

Every chat (a client's topic, a private chat) is a FIFO of its pending deliveries, so one
chat's messages never overtake each other. Among chats the one holding the most urgent lane
goes first (a ringing or missed call, then people's messages, then live call lines, then
cards), as long as its chat's token bucket and the bot's global bucket allow. Pending lines of
one call's live message collapse into one edit to its latest state; alerts waiting for one
manager's private chat go as one message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from aiogram.types import InlineKeyboardMarkup

from bot.telegram.budgets import Budgets
from storage.telegram_models import TelegramDelivery
from storage.telegram_queue import ALERT, ESCALATE

MAX_TEXT = 4096
MAX_MERGED = 20  # alerts merged into one private message
# Sends a chat's budget keeps for a ringing or missed call: other lanes leave this many tokens
# in the bucket (up to its burst), so an alert arriving behind a backlog finds one at once
# instead of waiting a whole refill (a group's is 4 s).
ALERT_RESERVE = 1

Fifo = tuple[str, int]  # ("topic", client id) or ("chat", chat id)


def fifo_key(row: TelegramDelivery) -> Fifo:
    """The line a delivery waits in: its client's topic, or its chat."""
    if row.target == "topic" and row.client_id is not None:
        return "topic", row.client_id
    return "chat", row.chat_id


# Bot API calls before a message in a topic not known to stand: the topic, then its card.
NEW_TOPIC_CALLS = 2


def cost(row: TelegramDelivery, ready: set[int]) -> int:
    """Bot API calls the delivery makes: a topic not known to stand (not in `ready`) may need
    creating and its card sending first; a card redraw edits the title and the card."""
    if row.target != "topic":
        return 1
    extra = 0 if row.client_id in ready else NEW_TOPIC_CALLS
    return extra + (2 if row.method == "card" else 1)


def needed(row: TelegramDelivery, ready: set[int], budgets: Budgets) -> float:
    """Tokens the chat's bucket must hold for the row to go now: its cost (up to a burst),
    plus the alerts' reserve for any other lane."""
    reserve = 0 if row.lane == ALERT else ALERT_RESERVE
    return min(cost(row, ready) + reserve, burst(row, budgets))


def burst(row: TelegramDelivery, budgets: Budgets) -> float:
    return chat_burst(row.chat_id, budgets)


def chat_burst(chat_id: int, budgets: Budgets) -> float:
    """The most sends a chat's bucket holds (a group's, or a private chat's)."""
    rates = budgets.rates
    return rates.group_burst if chat_id < 0 else rates.chat_burst


def most_urgent(
    fifos: Mapping[Fifo, list[TelegramDelivery]],
    *,
    budgets: Budgets,
    now: datetime,
    mono: float,
    ready: set[int],
    alerted: Mapping[int, float],
    next_due: list[float],
) -> tuple[Fifo, list[TelegramDelivery]] | None:
    """The chat holding the most urgent lane whose head may go now, with what goes at once.

    `now` is wall time (due times are stored), `mono` the same moment in monotonic time;
    `alerted` says when (monotonic) each private chat last got an alert. When nothing may go,
    the monotonic moments at which something may are appended to `next_due`."""
    saving: set[int] = set()  # chats whose budget a more urgent line is waiting for
    for key, fifo in sorted(
        fifos.items(), key=lambda kv: (min(r.lane for r in kv[1]), kv[1][0].id or 0)
    ):
        head = fifo[0]
        due_in = (head.next_attempt_at - now).total_seconds()
        if due_in > 0:  # a backoff: this line waits, it does not hold the chat's budget
            next_due.append(mono + due_in)
            continue
        if head.chat_id in saving:
            continue
        wait = budgets.wait_for(head.chat_id, needed(head, ready, budgets))
        if wait > 0:
            saving.add(head.chat_id)  # less urgent lines must not spend what this one needs
        if head.lane == ALERT and head.target == "chat":
            last = alerted.get(head.chat_id, float("-inf"))
            wait = max(wait, last + budgets.spread(head.chat_id) - mono)
        if wait > 0:
            next_due.append(mono + wait)
            continue
        return key, together(fifo)
    return None


def together(fifo: Sequence[TelegramDelivery]) -> list[TelegramDelivery]:
    """The head and what goes in the same message: the call's next live lines (one edit to
    the latest state), or more alerts waiting for the same private chat."""
    head = fifo[0]
    batch = [head]
    size = len(head.text)
    for row in fifo[1:]:
        size += len(row.text) + 2
        if (head.method == "live" and row.method == "live" and row.call_id == head.call_id) or (
            head.target == "chat"
            and head.lane == ALERT
            and row.lane == ALERT
            and row.method in ("send", ESCALATE)
            and head.method in ("send", ESCALATE)
            and len(batch) < MAX_MERGED
            and size <= MAX_TEXT
        ):
            batch.append(row)
        else:
            break
    return batch


def merged(batch: Sequence[TelegramDelivery]) -> tuple[str, InlineKeyboardMarkup | None]:
    """One message for the batch: the texts one after another, the buttons of each."""
    texts: list[str] = []
    buttons = []
    for row in batch:
        texts.append(row.text)
        if row.reply_markup:
            buttons.extend(
                InlineKeyboardMarkup.model_validate_json(row.reply_markup).inline_keyboard
            )
    text = "\n\n".join(texts)
    return text, InlineKeyboardMarkup(inline_keyboard=buttons) if buttons else None


def live_text(lines: Sequence[TelegramDelivery]) -> str:
    """A call's live message: its lines, the opening block and the latest ones when too long."""
    text = "\n".join(line.text for line in lines)
    if len(text) > MAX_TEXT:
        text = lines[0].text + "\n…\n" + text[-(MAX_TEXT - len(lines[0].text) - 3) :]
    return text
