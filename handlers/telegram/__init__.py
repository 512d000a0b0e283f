"""aiogram routers: the managers' forum supergroup, manager commands and clients' private chats."""

# Before any module here imports aiogram: its types are then built on first use (~110 MB less).
from bot.telegram import lazy_types as lazy_types
