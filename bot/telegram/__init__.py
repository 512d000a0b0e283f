"""The Telegram shell: the bot and dispatcher, the send queue and the call notifier."""
