"""aiogram's types built on first use (bot/telegram/lazy_types.py): the same models, built later.

Each check runs in a fresh interpreter: whether aiogram is lazy depends on what imported it first.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

USE = r"""
import json, re
import bot.telegram.wiring  # what serve imports: aiogram through bot.telegram
from aiogram.methods import CreateForumTopic, SendMessage
from aiogram.methods.base import Response
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

built_at_import = Message.__pydantic_complete__ or Update.__pydantic_complete__
user = {"id": 7, "is_bot": False, "first_name": "A"}
topic = Update.model_validate({"update_id": 1, "message": {
    "message_id": 5, "date": 1700000000, "from": user, "text": "/start x",
    "chat": {"id": -100, "type": "supergroup", "is_forum": True},
    "message_thread_id": 3, "is_topic_message": True,
    "reply_to_message": {"message_id": 4, "date": 1700000000,
        "chat": {"id": -100, "type": "supergroup"},
        "forum_topic_created": {"name": "t", "icon_color": 1}}}})
button = Update.model_validate({"update_id": 2, "callback_query": {
    "id": "1", "from": user, "chat_instance": "x", "data": "d",
    "message": {"message_id": 5, "date": 1700000000, "chat": {"id": 1, "type": "private"}}}})
markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="a", callback_data="b")]])
send = SendMessage(chat_id=1, text="hi", reply_markup=markup, message_thread_id=3)
sent = Response[Message].model_validate(
    {"ok": True, "result": {"message_id": 6, "date": 1700000000, "text": "hi",
     "chat": {"id": 1, "type": "private"}}})
created = Response[CreateForumTopic(chat_id=-100, name="t").__returning__].model_validate(
    {"ok": True, "result": {"message_thread_id": 3, "name": "t", "icon_color": 1}})
updates = Response[list[Update]].model_validate({"ok": True, "result": [{"update_id": 3}]})
print(json.dumps({
    "built_at_import": built_at_import,
    "topic": topic.message.reply_to_message.forum_topic_created.name,
    "thread": topic.message.message_thread_id,
    "button": [button.callback_query.data, button.callback_query.message.chat.type],
    "markup": send.model_dump(exclude_none=True)["reply_markup"],
    "sent": type(sent.result).__name__,
    "created": created.result.message_thread_id,
    "updates": updates.result[0].update_id,
    "schema": Update.model_json_schema(),
    # VmHWM: ru_maxrss would carry over the parent's peak across fork and exec.
    "peak_mb": int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read())[1]) / 1024,
}))
"""

EAGER_SCHEMA = """
import json
from aiogram.types import Update  # aiogram first: its own eager import
print(json.dumps({"schema": Update.model_json_schema()}))
"""


def run(code: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_types_are_built_on_first_use_and_behave_as_aiogram_s() -> None:
    lazy = run(USE)
    assert lazy["built_at_import"] is False
    assert lazy["topic"] == "t" and lazy["thread"] == 3
    assert lazy["button"] == ["d", "private"]
    assert lazy["markup"] == {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]}
    assert lazy["sent"] == "Message" and lazy["created"] == 3 and lazy["updates"] == 3
    # All it nests, built later, the same: Update's JSON schema is aiogram's own.
    assert lazy["schema"] == run(EAGER_SCHEMA)["schema"]
    # Eagerly, importing aiogram alone peaks at ~165 MB.
    assert isinstance(lazy["peak_mb"], float) and lazy["peak_mb"] < 130


WARM = """
import json
import bot.telegram.wiring
from aiogram.methods.base import Response
from aiogram.types import Message, Update
from bot.telegram import lazy_types

lazy_types.warm_up()
print(json.dumps({
    "built": [Update.__pydantic_complete__, Message.__pydantic_complete__,
              Response[Message].__pydantic_complete__],
    "methods": sorted(method.__name__ for method in lazy_types.WARMED),
}))
"""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_what_a_running_bot_calls_is_built_before_serving() -> None:
    """Built while serving, a model stalled the event loop for up to seconds: every Bot API
    method the code calls (`bot.send_message(`…) is among those `warm_up` builds."""
    warm = run(WARM)
    assert warm["built"] == [True, True, True]
    called = {
        match
        for folder in ("bot", "handlers", "telephony")
        for path in (ROOT / folder).rglob("*.py")
        for match in re.findall(r"\bbot\.([a-z_]+)\(", path.read_text())
    }
    assert called, "no Bot API call found: the pattern is out of date"
    methods = warm["methods"]
    assert isinstance(methods, list)
    assert called <= {_snake(name) for name in methods}


WARM_THEN_COLLECT = """
import gc, json
import bot.telegram.wiring
from aiogram.methods import EditMessageText, GetUpdates, SendMessage
from aiogram.methods.base import Response
from bot.telegram import lazy_types

lazy_types.warm_up()
gc.collect()
print(json.dumps({"built": [Response[method.__returning__].__pydantic_complete__
                            for method in (SendMessage, EditMessageText, GetUpdates)]}))
"""


def test_the_answers_built_before_serving_outlive_a_garbage_collection() -> None:
    """pydantic holds `Response[Message]` by a weak reference only: dropped by the collector,
    it would be built again on the next send, while serving."""
    assert run(WARM_THEN_COLLECT)["built"] == [True, True, True]
