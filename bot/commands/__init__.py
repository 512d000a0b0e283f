"""One module per CLI command; each has `register(commands)` and sets `run(settings, args)`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from bot.settings import Settings

if TYPE_CHECKING:  # argparse's class is generic only for type checkers (not at run time on 3.11)
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction
Runner = Callable[[Settings, argparse.Namespace], int]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
