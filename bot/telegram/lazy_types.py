"""Import aiogram with its Telegram types built on first use, not all at import.

`aiogram/types/__init__.py` ends with `model_rebuild(_types_namespace=...)` on each of its ~400
models. pydantic then builds every schema, validator and serializer at once, and each model
inlines its own copy of every model it nests that is not built yet (in alphabetical order, so
~25 models nest a whole copy of `Message`): ~110 MB of peak RSS. Building `Update` alone, with
all it nests, takes ~4 MB.

Importing aiogram through this module skips that loop, keeps aiogram's namespace, defers
aiogram's other models (its methods, `Response`) as its types already are, and gives
`TelegramObject` two hooks so that a model is built on its first use:

- `model_rebuild`, which pydantic calls on a model's first validation or serialization, resolves
  forward references in aiogram's namespace (aiogram's modules import each other only under
  TYPE_CHECKING), as aiogram's loop did;
- `__get_pydantic_core_schema__`: a model nested in one that is not a `TelegramObject` (a method,
  `Response[...]`, whose namespace lacks aiogram's types) is built first on its own, and then
  reused. Nested in a `TelegramObject`, it is inlined as usual, in aiogram's namespace.

The models are the same as aiogram's (the JSON schemas of all of them are identical); only when
they are built changes. Every module here that imports aiogram is under `bot.telegram` or
`handlers.telegram`, whose `__init__` imports this module first; had aiogram been imported
before, this module leaves it as it is (eager: correct, only bigger).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic_core import CoreSchema

# pydantic's own `model_rebuild`, restored after aiogram's import and called by the hooks.
_pydantic_model_rebuild = BaseModel.__dict__["model_rebuild"]
_pydantic_rebuild = _pydantic_model_rebuild.__func__

# aiogram's `_types_namespace`: every type by name, plus List, Optional, Union, Literal, Default.
_namespace: dict[str, Any] = {}
# The TelegramObjects being built (outermost first): the models they nest are inlined.
_building: list[type[BaseModel]] = []


def _skip_eager_rebuild(
    cls: type[BaseModel],
    *,
    force: bool = False,
    raise_errors: bool = True,
    _parent_namespace_depth: int = 2,
    _types_namespace: Any = None,
) -> bool | None:
    """BaseModel.model_rebuild while aiogram imports: its eager loop just hands over the names."""
    if _types_namespace is not None and cls.__module__.startswith("aiogram.types."):
        _namespace.update(_types_namespace)
        return None
    result: bool | None = _pydantic_rebuild(
        cls,
        force=force,
        raise_errors=raise_errors,
        # One frame more than pydantic expects: this wrapper.
        _parent_namespace_depth=_parent_namespace_depth + 1,
        _types_namespace=_types_namespace,
    )
    return result


def _model_rebuild(
    cls: type[BaseModel],
    *,
    force: bool = False,
    raise_errors: bool = True,
    _parent_namespace_depth: int = 2,
    _types_namespace: Any = None,
) -> bool | None:
    """TelegramObject.model_rebuild: pydantic calls it on a model's first use."""
    _building.append(cls)
    try:
        result: bool | None = _pydantic_rebuild(
            cls, force=force, raise_errors=raise_errors, _types_namespace=_namespace
        )
        return result
    finally:
        _building.pop()


def _core_schema(cls: type[BaseModel], source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
    """TelegramObject.__get_pydantic_core_schema__: asked for each model pydantic meets."""
    if not _building and not cls.__pydantic_complete__:
        cls.model_rebuild()  # nested in a method or `Response[...]`: built first, then reused
    return handler(source)


def _understood() -> bool:
    """This pydantic's `model_rebuild` takes the arguments the hooks pass on (a later release
    that changes them gets aiogram's eager import: bigger, never broken)."""
    parameters = inspect.signature(_pydantic_rebuild).parameters
    return {"_types_namespace", "_parent_namespace_depth", "force", "raise_errors"} <= set(
        parameters
    ) and hasattr(BaseModel, "__pydantic_complete__")


def _import_aiogram() -> None:
    if "aiogram.types" in sys.modules:
        return
    if not _understood():
        import aiogram

        return
    BaseModel.model_rebuild = classmethod(_skip_eager_rebuild)  # type: ignore[method-assign,assignment]
    # aiogram's other models (~190 methods, Response) deferred too: built on first use.
    BaseModel.model_config["defer_build"] = True
    try:
        import aiogram  # noqa: F401  (imports aiogram.types and aiogram.methods)
        from aiogram.types.base import TelegramObject
    finally:
        del BaseModel.model_config["defer_build"]
        BaseModel.model_rebuild = _pydantic_model_rebuild  # type: ignore[method-assign]
    TelegramObject.model_rebuild = classmethod(_model_rebuild)  # type: ignore[method-assign,assignment]
    TelegramObject.__get_pydantic_core_schema__ = classmethod(_core_schema)  # type: ignore[method-assign,assignment]


_import_aiogram()


def _warmed() -> tuple[type[Any], ...]:
    from aiogram import methods

    return (
        methods.GetUpdates,
        methods.SendMessage,
        methods.EditMessageText,
        methods.CopyMessage,
        methods.CreateForumTopic,
        methods.EditForumTopic,
        methods.CloseForumTopic,
        methods.SetWebhook,
    )


# The Bot API methods Trubka calls (a test checks the code calls no other).
WARMED = _warmed()
# Their answers' models, built by `warm_up`. Held here: pydantic keeps a parametrized generic
# (`Response[Message]`) only by a weak reference, so the garbage collector could drop a built
# one and aiogram would build it again on the next send, while serving.
_ANSWERS: list[type[BaseModel]] = []


def warm_up() -> None:
    """Build now, before serving, the models a running bot uses: an update, and the methods the
    sender calls with their answers. Built on first use, each stalled the event loop (and
    every push waiting on it) while serving; here they are built once, before the startup
    objects are frozen (bot/http_server.py)."""
    from aiogram.methods.base import Response
    from aiogram.types import Message, Update

    # Message first: an update then reuses what it built (2.3 MB less than the other way).
    Message.model_rebuild()
    Update.model_rebuild()
    answers = []
    for method in WARMED:
        method.model_rebuild()
        answer = Response[method.__returning__]  # type: ignore[name-defined]
        answer.model_rebuild()
        answers.append(answer)
    _ANSWERS[:] = answers
