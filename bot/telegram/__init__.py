"""The Telegram shell: the bot and dispatcher, the send queue and the call notifier."""

# Before any module here imports aiogram: its types are then built on first use (~110 MB less).
from bot.telegram import lazy_types as lazy_types
